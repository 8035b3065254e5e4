"""Text a database cannot hold, cleaned where a peer's data enters the gateway.

A peer may send a NUL character (PostgreSQL refuses it in text) or a lone UTF-16 surrogate
(SQLite and every UTF-8 encoder refuse it). Either used to stop a whole intake at that record.
Both are cleaned the same way for both stores, before anything is stored: a NUL is dropped, a
lone surrogate becomes U+FFFD. Nothing else is changed.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def clean_text(text: str) -> str:
    """``text`` without NUL characters and with lone surrogates replaced by U+FFFD."""
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", "") if "\x00" in text else text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, tuple):
        items = tuple(_clean(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = {_clean(k): _clean(v) for k, v in value.items()}
        same = list(pairs) == list(value) and all(a is b for a, b in zip(pairs.values(), value.values(), strict=True))
        return value if same else pairs
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return cleaned(value)
    return value


# Field names per record class: ``dataclasses.fields`` builds its answer anew at every call,
# and every record read goes through here.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}

# Values with no text in them, passed over at once (most fields of a record).
_NO_TEXT = (type(None), bool, int, float, datetime)


def cleaned(record: T) -> T:
    """A copy of a model record (a complaint, a follow-up, a status change, with what they
    hold) whose texts the store can hold; the record itself when nothing needed cleaning."""
    kind = type(record)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = tuple(field.name for field in dataclasses.fields(record))  # type: ignore[arg-type]
        _FIELD_NAMES[kind] = names
    changes = {}
    for name in names:
        value = getattr(record, name)
        if value.__class__ in _NO_TEXT:
            continue
        if value.__class__ is str and value.isascii() and "\x00" not in value:  # clean already
            continue
        new = cleaned(value) if value.__class__ in _FIELD_NAMES else _clean(value)  # a record seen before
        if new is not value:
            changes[name] = new
    return dataclasses.replace(record, **changes) if changes else record  # type: ignore[type-var]
