"""Writing a file so that a crash never leaves it half written: checkpoints, logs, split files and
face-track sidecars all go through :func:`atomic_write`."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

__all__ = ['atomic_write', 'atomic_write_text', 'fsync_dir']


def fsync_dir(path: str) -> None:
    """fsync a folder, so that a rename in it survives a power loss (where the OS allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """``write(f)`` (a binary file) into a temporary file in the target's folder (usual file mode,
    not mkstemp's 0600), flush + fsync, ``os.replace`` it over ``path``, fsync the folder: a crash
    mid-write leaves any previous file at ``path`` intact, and a finished one survives a power loss."""
    directory = os.path.dirname(os.path.abspath(path)) or '.'
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str, text: str) -> None:
    """``text`` (UTF-8, line endings as given) through :func:`atomic_write`."""
    data = text.encode('utf-8')
    atomic_write(path, lambda f: f.write(data))
