"""YAML recipes for ``--config``: loading, ``_base_`` includes, key validation, argparse defaults.

A config file is a flat YAML mapping whose keys are the *argparse destination names* of the entry
point (``batch_size``, ``drop_path``, ``opt_betas``...; underscores, not dashes). Values have the type
the flag takes after parsing (``opt_betas: [0.9, 0.999]``, ``amp: true``).

Optional include: ``_base_: ../common.yaml`` (or a list of paths), resolved relative to the including
file; the including file's keys override the base's. Includes may nest; cycles are an error.

Precedence at run time: argparse defaults < config file < flags given on the command line.
Typical use in an entry point::

    parser = finetune_parser()                     # cli.args (or pretrain_parser())
    args = parse_args_with_config(parser)          # reads --config, validates keys, applies CLI

Unknown keys raise ``ConfigError`` naming the file and the key, so a typo never silently falls back
to a default.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence

__all__ = ["ConfigError", "load_config", "parser_keys", "apply_config", "parse_args_with_config"]

BASE_KEY = "_base_"


class ConfigError(ValueError):
    pass


def _read_yaml(path: str) -> Dict[str, Any]:
    import yaml  # pyyaml (a dependency of timm)
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:  # one line: file:line:column and the problem
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        what = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError(f"{where}: invalid YAML: {what}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of flag names to values, "
                          f"got {type(data).__name__}")
    for k in data:
        if not isinstance(k, str):
            raise ConfigError(f"{path}: key {k!r} is not a string")
    return data


def _load(path: str, stack: List[str]) -> Dict[str, Any]:
    path = os.path.abspath(path)
    if path in stack:
        raise ConfigError("cyclic _base_ include: " + " -> ".join(stack + [path]))
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, None)
    merged: Dict[str, Any] = {}
    if bases is not None:
        if isinstance(bases, str):
            bases = [bases]
        if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
            raise ConfigError(f"{path}: {BASE_KEY} must be a path or a list of paths")
        for b in bases:
            bpath = b if os.path.isabs(b) else os.path.join(os.path.dirname(path), b)
            merged.update(_load(bpath, stack + [path]))
    merged.update(data)
    return merged


def load_config(path: str, allowed: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """Read a YAML recipe (resolving ``_base_`` includes) -> dict of flag name -> value.

    ``allowed``: the set of accepted keys (e.g. ``parser_keys(parser)``); a key outside it raises
    ``ConfigError`` naming the file (the file that defines it, for included keys) and the key.
    Dashes in keys are accepted and turned into underscores.
    """
    cfg = _load(path, [])
    cfg = {k.replace("-", "_"): v for k, v in cfg.items()}
    if allowed is not None:
        allowed = set(allowed)
        unknown = [k for k in cfg if k not in allowed]
        if unknown:
            where = {k: _defining_file(path, k) for k in unknown}
            msg = "; ".join(f"{where[k]}: unknown key {k!r}" for k in unknown)
            raise ConfigError(msg + " (keys are the entry point's flag names, with underscores)")
    return cfg


def _defining_file(path: str, key: str, stack: Optional[List[str]] = None) -> str:
    """The file (path itself or one of its includes) where ``key`` is set last."""
    path = os.path.abspath(path)
    stack = stack or []
    if path in stack:
        return path
    data = _read_yaml(path)
    if key in data or key.replace("_", "-") in data:
        return path
    bases = data.get(BASE_KEY) or []
    if isinstance(bases, str):
        bases = [bases]
    for b in reversed(bases):
        bpath = b if os.path.isabs(b) else os.path.join(os.path.dirname(path), b)
        found = _defining_file(bpath, key, stack + [path])
        if found:
            return found
    return path


def parser_keys(parser: argparse.ArgumentParser) -> set:
    """The destination names of a parser's options (excluding help and ``config`` itself)."""
    return {a.dest for a in parser._actions if a.dest not in ("help", "config", argparse.SUPPRESS)}


def _checked_value(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """``value`` of ``key`` as the flag's own parsing would give it, or a ConfigError naming the
    file and the key (parser defaults skip argparse's type conversion, so it is done here)."""
    def bad(expected: str):
        raise ConfigError(f"{where}: key {key!r}: expected {expected}, got {value!r}")

    def one(v):
        t = action.type
        if v is None:
            return None
        if t is int:
            if isinstance(v, bool) or not isinstance(v, int):
                bad("an integer")
        elif t is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                bad("a number")
            v = float(v)
        elif t is not None and t is not str and isinstance(v, str):
            try:
                v = t(v)
            except (TypeError, ValueError, argparse.ArgumentTypeError):
                bad(f"a value {getattr(t, '__name__', 'of the flag')} accepts")
        elif t is str and not isinstance(v, (str, int, float)):
            bad("a string")
        if action.choices is not None and v not in action.choices:
            bad(f"one of {', '.join(map(str, action.choices))}")
        return v

    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            bad("true or false")
        return value
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            bad(f"a list ({action.nargs if isinstance(action.nargs, int) else 'one or more'} values)")
        if isinstance(action.nargs, int) and len(value) != action.nargs:
            bad(f"a list of {action.nargs} values")
        if action.nargs == "+" and not value:
            bad("at least one value")
        return [one(v) for v in value]
    return one(value)


def apply_config(parser: argparse.ArgumentParser, path: str) -> Dict[str, Any]:
    """Validate ``path`` against the parser's flags (names and values: type, count, choices) and
    install its values as parser defaults."""
    cfg = load_config(path, allowed=parser_keys(parser))
    actions = {}
    for a in parser._actions:  # the first action of a dest (``--x``, not its ``--no_x``) says its type
        actions.setdefault(a.dest, a)
    cfg = {k: _checked_value(actions[k], k, v, _defining_file(path, k)) for k, v in cfg.items()}
    parser.set_defaults(**cfg)
    return cfg


def parse_args_with_config(parser: argparse.ArgumentParser,
                           argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` where ``--config FILE`` sets defaults and explicit flags override them.

    Adds a ``--config`` option to the parser when it has none. ``args.config`` keeps the path.
    """
    if not any(a.dest == "config" for a in parser._actions):
        parser.add_argument("--config", default=None, type=str,
                            help="YAML recipe (keys = flag names); command-line flags override it")
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config:
        try:
            apply_config(parser, known.config)
        except ConfigError as e:
            if not from_command_line:
                raise
            parser.exit(2, f"{parser.prog}: error: {e}\n")  # one line, as argparse's own errors
    return parser.parse_args(argv)
