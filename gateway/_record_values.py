"""Whether a record an adapter built holds what its fields say, checked where records enter.

The model classes are plain dataclasses: nothing stops an adapter from putting a peer's number
where an id (a ``str``) belongs, a naive time where an aware one does, or a latitude of 999.
Taken in as they are, such values go wrong quietly and later: an id 1 and an id "1" are two
complaints, a naive time is read as UTC (seven hours off for a WIB peer), a position off the
globe reaches the hub. The engine asks :func:`value_problem` of every record it takes in;
a record with a problem is quarantined with it (naming the field, never the value) and the
rest of the stream goes on.

The checks follow each class's type annotations, so a field added to the model is checked
without a change here; the ranges no type can say are in :data:`_RANGES`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway._model import AttachmentRef, Location

# A check of one value: None when it is good, else what is wrong with it (without the value).
_Check = Callable[[Any], str | None]

# The ranges no type can say: (class, field) -> (lowest, highest).
_RANGES: dict[tuple[type, str], tuple[float, float]] = {
    (Location, "latitude"): (-90.0, 90.0),
    (Location, "longitude"): (-180.0, 180.0),
    (AttachmentRef, "size"): (0, math.inf),  # bytes
}

# Fields that must not be empty: a record is known by them.
_IDS = frozenset({"ref", "complaint_ref"})

# Types checked by isinstance alone, and what a value of another type is.
_PLAIN: dict[Any, str] = {str: "is not text", bool: "is not true or false"}

_CHECKS: dict[type, Callable[[Any], str | None]] = {}


def value_problem(record: Any) -> str | None:
    """What is wrong with ``record``'s values, as "<field> <problem>" (a nested field as
    ``location.latitude``); None when nothing is."""
    check = _CHECKS.get(type(record))
    if check is None:
        check = _CHECKS[type(record)] = _record_check(type(record))
    return check(record)


def _record_check(cls: type) -> Callable[[Any], str | None]:
    hints = typing.get_type_hints(cls)
    checks: list[tuple[str, _Check]] = []
    for f in dataclasses.fields(cls):
        check = _check_of(hints[f.name])
        bounds = _RANGES.get((cls, f.name))
        if bounds is not None:
            check = _within(check, *bounds)
        if f.name in _IDS:
            check = _not_empty(check)
        checks.append((f.name, check))

    def check_record(record: Any) -> str | None:
        for name, check in checks:
            problem = check(getattr(record, name))
            if problem is not None:
                return f"{name}{problem}" if problem.startswith((".", "[")) else f"{name} {problem}"
        return None

    return check_record


def _check_of(hint: Any) -> _Check:
    """The check of a value annotated ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if type(None) in options:
            rest = [o for o in options if o is not type(None)]
            if len(rest) == 1 and rest[0] in _PLAIN:  # the most common field: one call, not two
                kind, problem = rest[0], _PLAIN[rest[0]]
                return lambda value: None if value is None or isinstance(value, kind) else problem
            inner = _check_of(rest[0]) if len(rest) == 1 else _check_of(typing.Union[tuple(rest)])  # noqa: UP007
            return lambda value: None if value is None else inner(value)
        return _any_of([_check_of(o) for o in options])
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _check_of(args[0])
            return lambda value: _each(value, item)
        return _is(tuple, "is not a tuple")
    if origin is not None:  # dict[...] and the like: their contents are the adapter's own
        return _is(origin, f"is not a {origin.__name__}")
    if hint is Any:
        return lambda value: None
    if hint is datetime:
        return _aware_time
    if hint is int:
        return lambda value: None if isinstance(value, int) and not isinstance(value, bool) else "is not a whole number"
    if hint is float:
        return _number
    if hint in _PLAIN:
        return _is(hint, _PLAIN[hint])
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        nested = _CHECKS.get(hint) or _CHECKS.setdefault(hint, _record_check(hint))
        name = hint.__name__

        def check_nested(value: Any) -> str | None:
            if not isinstance(value, hint):
                return f"is not a {name}"
            problem = nested(value)
            return None if problem is None else f".{problem}"

        return check_nested
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _is(hint, f"is not a {hint.__name__}")
    if isinstance(hint, type):
        return _is(hint, f"is not a {hint.__name__}")
    return lambda value: None


def _is(kind: type, problem: str) -> _Check:
    return lambda value: None if isinstance(value, kind) else problem


def _any_of(checks: list[_Check]) -> _Check:
    def check(value: Any) -> str | None:
        problems = [c(value) for c in checks]
        return None if any(p is None for p in problems) else problems[0]

    return check


def _each(value: Any, item: _Check) -> str | None:
    if not isinstance(value, tuple):
        return "is not a tuple"
    for i, v in enumerate(value):
        problem = item(v)
        if problem is not None:
            return f"[{i}]{problem}" if problem.startswith((".", "[")) else f"[{i}] {problem}"
    return None


def _aware_time(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return "is not a time"
    if value.utcoffset() is None:
        return "is a time without a time zone (adapters return aware UTC times: docs/adapters.md)"
    return None


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "is not a number"
    if not math.isfinite(value):
        return "is not a finite number"
    return None


def _within(check: _Check, lowest: float, highest: float) -> _Check:
    def ranged(value: Any) -> str | None:
        problem = check(value)
        if problem is None and value is not None and not lowest <= value <= highest:
            return f"is below {lowest:g}" if highest == math.inf else f"is outside {lowest:g} to {highest:g}"
        return problem

    return ranged


def _not_empty(check: _Check) -> _Check:
    def non_empty(value: Any) -> str | None:
        problem = check(value)
        if problem is None and isinstance(value, str) and not value.strip():
            return "is empty"
        return problem

    return non_empty
