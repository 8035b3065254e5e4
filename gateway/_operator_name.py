"""The operator's name as the audit trail keeps it (``operator:NAME``), one rule for the
dashboard's sign-in and the CLI's ``--operator`` / ``GATEWAY_OPERATOR``.

The audit is read line by line and printed on terminals (``gateway privacy requests``,
``gateway deliveries show``): a name holding a line break could forge a second entry
(``Siti\\nactor=operator:Budi``), one holding an escape code could recolour or hide what
follows, and an empty one (``operator:``) says nobody."""

from __future__ import annotations

MAX_NAME_CHARS = 64


def clean_operator_name(raw: str) -> str | None:
    """The name as the audit keeps it: printable, one line, 1 to 64 characters; else ``None``.
    Runs of spaces and tabs become one space and the ends are trimmed; a line break inside the
    name refuses it (it is never joined into one line: what follows it was not a name)."""
    if len(raw.strip().splitlines()) > 1:
        return None
    name = " ".join(raw.split())
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        return None
    return name
