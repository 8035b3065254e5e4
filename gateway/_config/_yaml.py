"""YAML loading that remembers where each key and value came from, so that
config errors can name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from gateway._errors import ConfigError, ConfigIssue


class LocatedYaml:
    """Plain data (dicts, lists, scalars) plus the line of every key path."""

    def __init__(self, path: Path, data: Any, lines: dict[tuple[Any, ...], int]):
        self.path = path
        self.data = data
        self._lines = lines

    def line(self, loc: tuple[Any, ...]) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self._lines:
                return self._lines[loc]
            loc = loc[:-1]
        return 1


class _Constructor(RoundTripConstructor):
    """Timestamps stay the text they were written as: ruamel's own constructor raises a bare
    ValueError (no line) for 2027-02-30, while the schema validates the text and names the line."""


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", lambda self, node: str(self.construct_scalar(node)))


#: Bounds on one file: a configuration file is a few kilobytes. ruamel reads about 3,000 lines a
#: second, and aliases (``*name``) repeat what they name, so ten lines of nested aliases stand for
#: billions of values: past these bounds config check would hang instead of saying what is wrong.
MAX_FILE_BYTES = 256 * 1024
MAX_VALUES = 100_000


class _TooManyValues(Exception):
    pass


def load_yaml(path: Path) -> LocatedYaml:
    try:
        data_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    if len(data_bytes) > MAX_FILE_BYTES:
        reason = f"{len(data_bytes)} bytes, more than a configuration file may hold ({MAX_FILE_BYTES}): the right file?"
        raise ConfigError([ConfigIssue(str(path), None, "", reason)])
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data_bytes[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [
                ConfigIssue(
                    str(path), line, "", f"not UTF-8 text (byte 0x{data_bytes[exc.start]:02x}); save the file as UTF-8"
                )
            ]
        ) from None
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        mark_line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, DuplicateKeyError):  # ruamel quotes both values, and either may be a secret
            problem = problem.split(" with value ", 1)[0] + " (a key may appear once in a mapping)"
        raise ConfigError([ConfigIssue(str(path), mark_line, "", f"invalid YAML: {problem}")]) from None
    except ReaderError as exc:  # a character YAML does not allow (NUL, a control code): its line
        at = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        code = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "a control code"
        reason = f"invalid YAML: a character YAML does not allow ({code}); remove it"
        raise ConfigError([ConfigIssue(str(path), at, "", reason)]) from None
    except Exception as exc:  # ruamel's other errors (a recursion): never a traceback
        raise ConfigError([ConfigIssue(str(path), None, "", f"invalid YAML ({type(exc).__name__})")]) from None
    lines: dict[tuple[Any, ...], int] = {}
    try:
        data = _plain(raw, (), lines, [0])
    except _TooManyValues:
        reason = f"more than {MAX_VALUES} values once its aliases (*name) are repeated; write them out"
        raise ConfigError([ConfigIssue(str(path), None, "", reason)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(str(path), 1, "", "expected a mapping of keys at the top level")])
    return LocatedYaml(path, data, lines)


def _plain(node: Any, loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int], count: list[int]) -> Any:
    count[0] += 1  # values made so far: an alias is made again each time it is used
    if count[0] > MAX_VALUES:
        raise _TooManyValues
    if isinstance(node, CommentedMap):
        out = {}
        for key in node:
            try:
                line, _col = node.lc.key(key)
                lines[loc + (str(key),)] = line + 1
            except (KeyError, TypeError):
                pass
            out[str(key)] = _plain(node[key], loc + (str(key),), lines, count)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for index, item in enumerate(node):
            try:
                line, _col = node.lc.item(index)
                lines[loc + (index,)] = line + 1
            except (KeyError, TypeError):
                pass
            out_list.append(_plain(item, loc + (index,), lines, count))
        return out_list
    if node is not None and not isinstance(node, (bool, int, float, str)):
        return str(node)  # dates and the like: the schema says what it wants
    return node
