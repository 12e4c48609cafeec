"""How the entry points end: a user error (a non-finite loss, an unreadable checkpoint, a bad
split line, a broken evaluation video, an unwritable or busy folder) as one line and exit code 1,
a preemption with its own exit code, internal errors with their traceback."""
from __future__ import annotations

import os
import sys
from typing import Callable

from engine.checkpoint import ResumeMismatchError
from engine.distributed import get_rank
from engine.preemption import Preempted
from engine.run_lock import OutputDirError, RunDirBusyError
from engine.step import NonFiniteLossError

__all__ = ['cli_main']


def _user_errors():
    from datasets.split_file import MissingPathsError, SplitFileError
    from datasets.transforms import InputCropError
    from datasets.video_dataset import TooManyBrokenVideos
    from datasets.video_reader import VideoReadError
    from models.checkpoint import CheckpointError
    return (NonFiniteLossError, CheckpointError, ResumeMismatchError, OutputDirError, SplitFileError,
            MissingPathsError, VideoReadError, TooManyBrokenVideos, InputCropError, RunDirBusyError)


def cli_main(main: Callable) -> None:
    """``if __name__ == '__main__'`` of the entry points: a user error (a non-finite loss, an
    unreadable checkpoint, a bad split line, a broken evaluation video, an unwritable folder, a
    missing split file) ends the process with its message and exit code 1 instead of a traceback;
    ``--debug`` (or ``SVFAP_DEBUG=1``) shows the traceback. Internal errors keep theirs."""
    debug = '--debug' in sys.argv or os.environ.get('SVFAP_DEBUG') == '1'
    try:
        main()
    except Preempted as e:
        print(f'| {e}', file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except _user_errors() + (FileNotFoundError,) as e:
        if debug:
            raise
        msg = str(e) if not isinstance(e, FileNotFoundError) or not e.filename else \
            f'{e.strerror}: {e.filename}'
        print(f'ERROR (rank {get_rank()}): {msg}', file=sys.stderr, flush=True)
        sys.exit(1)
