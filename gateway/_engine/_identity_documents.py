"""Files that look like an identity document (a KTP, a family card, a passport), held back from
the hub when the complaint is anonymous or confidential: the reporter asked not to be known, and
a scan of their KTP would say who they are. Judged by the file's name and type only (the gateway
does not look into the picture); the local app's ``privacy.attachments`` block says what to look
for (gateway/_config/_schema.py AttachmentPrivacy).

The reason written on the attachment names the pattern that matched, never the file name: a file
name often carries the reporter's own name (``ktp_budi_santoso.jpg``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from gateway._config._schema import AttachmentPrivacy
from gateway._store._held_back import HELD_BACK

# A word ends where letters meet digits or a lower-case letter meets an upper-case one (fotoKTP2).
_WORD_BREAKS = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def words_of(filename: str) -> str:
    """``"Foto-eKTP_Budi2.JPG"`` -> ``"foto e ktp budi 2 jpg"``: the name as lower-case words
    joined by one space, so that a pattern matches whole words however the name was written.

    NFKC first: a phone keyboard or a copied name may write KTP in full-width letters (U+FF2B...),
    which are the same letters to the reader and must be to the patterns. Case is folded after
    the split (the split needs the case) and normalised again (folding may make new compositions)."""
    split = _WORD_BREAKS.sub(" ", unicodedata.normalize("NFKC", filename))
    words = " ".join(re.findall(r"[^\W_]+", split))
    return unicodedata.normalize("NFKC", words.casefold())


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((p, re.compile(rf"(?<![^\W_])(?:{p})(?![^\W_])", re.IGNORECASE)) for p in patterns)


def identity_match(settings: AttachmentPrivacy, filename: str, content_type: str | None) -> str | None:
    """What makes a file look like an identity document (``name matches 'ktp'``), or None."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and kind in {t.lower() for t in settings.identity_types}:
        return f"type {kind}"
    words = words_of(filename)
    for pattern, compiled in _compiled(tuple(settings.identity_names)):
        if compiled.search(words):
            return f"name matches {pattern!r}"
    return None


def hold_back_reason(
    settings: AttachmentPrivacy, *, is_anonymous: bool, is_secret: bool, filename: str, content_type: str | None
) -> str | None:
    """Why a file of a complaint is not sent to the hub, or None when it may go."""
    kinds = [k for k, on in (("anonymous", is_anonymous), ("secret", is_secret)) if on and k in settings.hold_back_for]
    if not kinds:
        return None
    found = identity_match(settings, filename, content_type)
    if found is None:
        return None
    which = "an anonymous" if kinds[0] == "anonymous" else "a confidential"
    return (
        f"{HELD_BACK}looks like an identity document ({found}) on {which} complaint; check it at the "
        "local app and send it by hand only if the reporter agreed"
    )
