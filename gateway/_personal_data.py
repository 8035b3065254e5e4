"""Personal data kept for a purpose, sealed at rest (UU PDP 27/2022).

By default the gateway keeps none of a reporter's identity. A local app whose YAML names a
purpose (``privacy.reporter``) keeps the fields it lists, each sealed as a Fernet token
(AES-128-CBC with an HMAC-SHA256: a changed token is refused, never read as something else)
under keys from an environment variable: comma-separated keys, the first seals, every one
opens. A key is rotated by putting a new one in front, re-sealing (``gateway privacy
rotate-keys``), then removing the old one.

Nothing here ever puts a value or a key into an error's text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway._errors import GatewayError
from gateway._model import Reporter

#: Where the keys are read from unless a local app's ``privacy.reporter.key_env`` names another variable.
KEYS_ENV = "GATEWAY_PERSONAL_DATA_KEYS"

#: The reporter's fields, as :class:`gateway.Reporter` and the ``reporter`` table name them.
REPORTER_FIELDS = ("name", "nik", "phone", "email", "address")

# A Fernet token is url-safe base64 of: version byte 0x80, 8 bytes of time, 16 of IV, the
# ciphertext (whole 16-byte blocks), 32 of HMAC.
_VERSION = 0x80
_SHORTEST_TOKEN = 1 + 8 + 16 + 16 + 32


class KeysError(GatewayError):
    """The keys' environment variable is unset or does not hold Fernet keys (the text says
    which and where, never a key)."""


class UnreadableError(GatewayError):
    """A sealed value that none of the keys opens."""


def new_key() -> str:
    """A fresh random key, as the environment variable holds it (44 characters)."""
    return Fernet.generate_key().decode("ascii")


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


class PersonalDataKeys:
    """The keys of one environment variable: the first seals, every one opens."""

    def __init__(self, keys: list[str], variable: str = KEYS_ENV):
        if not keys:
            raise KeysError(f"the environment variable {variable} holds no key")
        self.variable = variable
        self.count = len(keys)
        fernets = [Fernet(k) for k in keys]
        self._first = fernets[0]
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:  # never the keys
        return f"PersonalDataKeys({self.variable}: {self.count} key(s))"

    @classmethod
    def from_text(cls, text: str, variable: str = KEYS_ENV) -> PersonalDataKeys:
        """Parse the variable's value; a :class:`KeysError` says which key is malformed."""
        parts = [part.strip() for part in text.split(",")]
        if not any(parts):
            raise KeysError(f"the environment variable {variable} is empty; make a key with `gateway privacy new-key`")
        for index, part in enumerate(parts, 1):
            try:
                Fernet(part)
            except (ValueError, TypeError, binascii.Error):
                raise KeysError(
                    f"the {_ordinal(index)} key in {variable} is not a key of `gateway privacy new-key` "
                    "(44 characters of url-safe base64); keys are separated by commas"
                ) from None
        return cls(parts, variable)

    @classmethod
    def from_environment(cls, variable: str, environ: Mapping[str, str]) -> PersonalDataKeys:
        value = environ.get(variable)
        if value is None:
            raise KeysError(
                f"the environment variable {variable} is not set; it holds the keys that encrypt the kept "
                "reporter data (make one with `gateway privacy new-key`)"
            )
        return cls.from_text(value, variable)

    def seal(self, value: str) -> str:
        # surrogatepass: a lone surrogate a peer sent is sealed and opened as it came, not an error
        return self._fernet.encrypt(value.encode("utf-8", "surrogatepass")).decode("ascii")

    def open(self, token: str) -> str:
        """The value sealed in ``token``; :class:`UnreadableError` when no key opens it (or it
        is no token at all): a value that is not ours is never handed back as it is."""
        return self._with_keys(self._fernet.decrypt, token).decode("utf-8", "surrogatepass")

    def reseal(self, token: str) -> str:
        """``token`` sealed again under the first key (its time kept); :class:`UnreadableError` as :meth:`open`."""
        return self._with_keys(self._fernet.rotate, token).decode("ascii")

    def _with_keys(self, call: Callable[[bytes], bytes], token: str) -> bytes:
        try:
            return call(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            raise UnreadableError(
                f"a kept value does not open with the keys in {self.variable}: was a key removed too soon?"
            ) from None

    def sealed_by_first(self, token: str) -> bool:
        """Whether the first key alone opens ``token`` (rotation has nothing to do for it)."""
        try:
            self._first.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True


def looks_sealed(value: str) -> bool:
    """Whether ``value`` has a Fernet token's form (whichever key sealed it). A plain name,
    number or address never has: so a value stored in plain text by an older version is told
    apart from one sealed under a key that is no longer in the list."""
    if len(value) < 100 or len(value) % 4:  # 73 bytes at least, in base64
        return False
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (ValueError, UnicodeError):
        return False
    return len(raw) >= _SHORTEST_TOKEN and raw[0] == _VERSION and (len(raw) - 57) % 16 == 0


@dataclass(frozen=True)
class ReporterKeeping:
    """What a local app keeps of its reporters (for its configured purpose) and the keys that seal it."""

    fields: tuple[str, ...]
    keys: PersonalDataKeys

    def sealed(self, reporter: Reporter) -> dict[str, str | None] | None:
        """The reporter's kept fields sealed, the others None, by column; None when none of
        the kept fields holds a value (then no row is stored)."""
        row: dict[str, str | None] = {}
        for name in REPORTER_FIELDS:
            value = getattr(reporter, name) if name in self.fields else None
            row[name] = self.keys.seal(value) if value else None
        return row if any(row.values()) else None
