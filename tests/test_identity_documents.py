"""Which file names look like an identity document: whole words, case ignored, however the name
was written (``KTP_budi.jpg``, ``fotoKTP2.png``, ``e-ktp.jpg``), and never a word that merely
begins like one (``simpang-lima.jpg`` is a place, not a driving licence)."""

from __future__ import annotations

import pytest

from gateway._config._schema import AttachmentPrivacy
from gateway._engine._identity_documents import hold_back_reason, identity_match, words_of

DEFAULTS = AttachmentPrivacy()
SIM = "sim( ?(a|b|c|ci|cii|d|di))?( umum)?"
KTP_GLUED = "(foto|scan|selfie|kopi|fotokopi|fc)?e?ktp(ku|mu|nya|saya|aku|asli|baru|lama)?"


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
        ("SIM_A.jpg", SIM),
        ("sim c 2024.jpg", SIM),
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


# Found missed by a review of issue 13: spelled out, glued, classes of SIM, full-width letters.
@pytest.mark.parametrize(
    ("filename", "pattern"),
    [
        ("Kartu_Tanda_Penduduk_Budi.jpg", "kartu tanda penduduk"),
        ("KartuTandaPenduduk.png", "kartu tanda penduduk"),
        ("Surat Izin Mengemudi Budi.jpg", "surat i[zj]in mengemudi"),
        ("SURAT_IJIN_MENGEMUDI.pdf", "surat i[zj]in mengemudi"),
        ("KTPku_Budi.jpg", KTP_GLUED),
        ("ktpsaya.jpg", KTP_GLUED),
        ("ktpnya.png", KTP_GLUED),
        ("fotoktp.jpg", KTP_GLUED),
        ("scanektp budi.pdf", KTP_GLUED),
        ("e-ktp.jpg", "ktp"),
        ("ektp.jpg", "ektp"),
        ("SIMC.jpg", SIM),
        ("simc.jpg", SIM),
        ("sim c.jpg", SIM),
        ("SimC.png", SIM),
        ("simb1.jpg", SIM),
        ("SIM_B2_umum.jpg", SIM),
        ("SIMCII.jpg", SIM),
        ("simd.jpg", SIM),
        ("simA umum.jpg", SIM),
        ("\uff2b\uff34\uff30.jpg", "ktp"),  # full width KTP
        ("\uff53\uff49\uff4d\uff43.jpg", SIM),  # full width simc
        (
            "\uff33\uff55\uff52\uff41\uff54 \uff29\uff5a\uff49\uff4e \uff2d\uff45\uff4e\uff47\uff45\uff4d\uff55\uff44\uff49.png",
            "surat i[zj]in mengemudi",
        ),
    ],
)
def test_spelled_out_glued_and_full_width_names_are_recognised(filename, pattern):
    assert identity_match(DEFAULTS, filename, "image/jpeg") == f"name matches {pattern!r}"


@pytest.mark.parametrize(
    "filename",
    [
        "simpang-lima.jpg",
        "simpang_tiga.jpg",
        "simulasi_banjir.png",
        "simcard.jpg",
        "simbol.png",
        "kkn_posko.jpg",
        "KKN-2026.jpg",
        "niken.jpg",
        "kiat.jpg",
        "aktapuri.jpg",
        "ktpx.jpg",
        "ektpan.jpg",
        "sertifikat_tanah.pdf",
        "kartu_nama.jpg",
        "surat_izin_keramaian.pdf",
        "\uff53\uff49\uff4d\uff50\uff41\uff4e\uff47.jpg",  # full width simpang
    ],
)
def test_ordinary_words_that_begin_like_a_pattern_are_not(filename):
    assert identity_match(DEFAULTS, filename, "image/jpeg") is None


def test_a_full_width_name_is_normalised_before_it_is_broken_into_words():
    assert words_of("\uff26\uff4f\uff54\uff4f\uff2b\uff34\uff30\uff12.JPG") == "foto ktp 2 jpg"


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


def test_the_reason_names_the_pattern_never_the_file():
    reason = hold_back_reason(
        DEFAULTS, is_anonymous=True, is_secret=False, filename="KTPku_Budi_Santoso.jpg", content_type="image/jpeg"
    )
    assert reason is not None and f"name matches {KTP_GLUED!r}" in reason
    assert "budi" not in reason.casefold() and "santoso" not in reason.casefold()
