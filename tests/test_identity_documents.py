"""Which file names look like an identity document: whole words, case ignored, however the name
was written (``KTP_budi.jpg``, ``fotoKTP2.png``, ``e-ktp.jpg``), and never a word that merely
begins like one (``simpang-lima.jpg`` is a place, not a driving licence)."""

from __future__ import annotations

import pytest

from gateway._config._schema import AttachmentPrivacy
from gateway._engine._identity_documents import hold_back_reason, identity_match, words_of

DEFAULTS = AttachmentPrivacy()


@pytest.mark.parametrize(
    ("filename", "pattern"),
    [
        ("ktp_budi.jpg", "ktp"),
        ("KTP.JPG", "ktp"),
        ("fotoKTP2.png", "ktp"),
        ("e-KTP Siti.jpeg", "ktp"),
        ("selfie-ktp.jpg", "ktp"),
        ("eKTP.jpg", "ktp"),
        ("ektp.jpg", "ektp"),
        ("KK.pdf", "kk"),
        ("scan kartu_keluarga.pdf", "kartu keluarga"),
        ("KartuKeluarga.png", "kartu keluarga"),
        ("SIM_A.jpg", "sim( [abc]1?| umum)?"),
        ("sim c 2024.jpg", "sim( [abc]1?| umum)?"),
        ("Paspor.jpg", "paspor"),
        ("passport-scan.png", "passport"),
        ("NPWP pribadi.pdf", "npwp"),
        ("akta-kelahiran.pdf", "akta"),
        ("buku_nikah.jpg", "buku nikah"),
    ],
)
def test_identity_documents_are_recognised_by_name(filename, pattern):
    assert identity_match(DEFAULTS, filename, "image/jpeg") == f"name matches {pattern!r}"


@pytest.mark.parametrize(
    "filename",
    ["simpang-lima.jpg", "jalan_simongan.png", "IMG-20261130-WA0001.jpg", "kkn_posko.jpg", "foto_aduan_1.png"],
)
def test_ordinary_photos_are_not(filename):
    assert identity_match(DEFAULTS, filename, "image/jpeg") is None


def test_a_name_is_broken_into_lower_case_words():
    assert words_of("Foto-eKTP_Budi2.JPG") == "foto e ktp budi 2 jpg"


def test_a_configured_type_is_held_back_whatever_the_name():
    settings = AttachmentPrivacy(identity_types=["application/vnd.kota.ktp"])
    assert identity_match(settings, "berkas1.bin", "application/vnd.kota.ktp; v=2") == "type application/vnd.kota.ktp"


@pytest.mark.parametrize(
    ("anonymous", "secret", "hold_back_for", "held"),
    [
        (True, False, ["anonymous", "secret"], "an anonymous"),
        (False, True, ["anonymous", "secret"], "a confidential"),
        (False, False, ["anonymous", "secret"], None),
        (True, False, ["secret"], None),
        (True, True, [], None),
    ],
)
def test_only_the_configured_kinds_of_complaint_hold_files_back(anonymous, secret, hold_back_for, held):
    settings = AttachmentPrivacy(hold_back_for=hold_back_for)
    reason = hold_back_reason(
        settings, is_anonymous=anonymous, is_secret=secret, filename="ktp_budi.jpg", content_type="image/jpeg"
    )
    if held is None:
        assert reason is None
    else:
        assert reason is not None and f"on {held} complaint" in reason and "budi" not in reason
