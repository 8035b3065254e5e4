"""The image metadata stripper, one format at a time: what a phone or an editor plants in a
file (EXIF with GPS, XMP, comments, PNG text) is gone, the picture is the same and upright, and
a file that says it is an image but cannot be read is refused, not sent."""

from __future__ import annotations

import io

import pytest
from image_kit import gps_of, jpeg, open_image, other_format, pixels, png
from PIL import ExifTags, Image

from gateway._engine._image_metadata import UnreadableImage, claims_image, strip_metadata
from gateway._model import AttachmentContent

MARKER = "PLANTED-3c9e1d"


def strip(data: bytes, content_type: str, filename: str = "foto.jpg") -> AttachmentContent:
    return strip_metadata(AttachmentContent(filename, content_type, data))


def test_a_jpeg_loses_exif_gps_xmp_and_comment_and_keeps_its_picture():
    original = jpeg(64, 48, marker=MARKER)
    assert original.count(MARKER.encode()) >= 5 and gps_of(original)  # planted: description ... GPS, XMP
    out = strip(original, "image/jpeg")
    assert MARKER.encode() not in out.data and b"Exif" not in out.data and b"Xiaomi" not in out.data
    assert b"adobe:ns:meta" not in out.data
    cleaned = open_image(out.data)
    assert cleaned.format == "JPEG" and cleaned.size == (64, 48) and out.content_type == "image/jpeg"
    assert dict(cleaned.getexif()) == {} and gps_of(out.data) == {} and "xmp" not in cleaned.info
    assert "comment" not in cleaned.info
    # Quality 90: each pixel within a few levels of the original's.
    (_, before), (_, after) = pixels(original), pixels(out.data)
    assert max(abs(a - b) for a, b in zip(before, after, strict=True)) < 24


def test_a_photo_stored_sideways_is_turned_upright_before_its_orientation_tag_goes():
    original = jpeg(60, 40, marker=MARKER, orientation=6)  # stored 60 wide; shown turned 90° clockwise
    out = open_image(strip(original, "image/jpeg").data)
    assert out.size == (40, 60) and ExifTags.Base.Orientation not in out.getexif()
    shown = Image.open(io.BytesIO(original))
    from PIL import ImageOps

    expected = ImageOps.exif_transpose(shown).convert("RGB").tobytes()
    assert max(abs(a - b) for a, b in zip(expected, out.convert("RGB").tobytes(), strict=True)) < 24


def test_a_png_loses_its_text_chunks_and_keeps_every_pixel():
    original = png(20, 10, text={"Author": f"{MARKER} author", "Comment": f"{MARKER} gps -6.98,110.41"})
    assert original.count(MARKER.encode()) == 2
    out = strip(original, "image/png")
    assert MARKER.encode() not in out.data and b"tEXt" not in out.data
    assert pixels(out.data) == pixels(original) and open_image(out.data).format == "PNG"


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("WEBP", "image/webp"), ("TIFF", "image/tiff"), ("GIF", "image/gif")]
)
def test_webp_tiff_and_gif_lose_what_they_carry(fmt, content_type):
    original = other_format(fmt, 30, 20, marker=MARKER)
    assert MARKER.encode() in original
    out = strip(original, content_type)
    assert MARKER.encode() not in out.data and b"Xiaomi" not in out.data
    cleaned = open_image(out.data)
    assert cleaned.format == fmt and cleaned.size == (30, 20) and out.content_type == content_type
    assert gps_of(out.data) == {}


def test_an_icc_profile_stays():
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "JPEG", icc_profile=profile, exif=Image.Exif())
    assert open_image(strip(out.getvalue(), "image/jpeg").data).info.get("icc_profile") == profile


def test_an_image_under_another_type_is_found_by_its_first_bytes_and_cleaned():
    original = jpeg(16, 16, marker=MARKER)
    assert claims_image("application/octet-stream", original)
    out = strip(original, "application/octet-stream")
    assert MARKER.encode() not in out.data and out.content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(32), "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + bytes(32), "image/heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + bytes(32), "image/avif"),
    ],
    ids=["heic", "heif", "avif"],
)
def test_a_heic_or_avif_under_another_type_is_refused_by_its_first_bytes(data, found):
    """A phone's photo sent as application/octet-stream: found by its ftyp brand, refused as it is
    under its own type (its metadata cannot be removed)."""
    assert claims_image("application/octet-stream", data)
    with pytest.raises(UnreadableImage) as caught:
        strip(data + MARKER.encode(), "application/octet-stream", filename="IMG_0001.bin")
    assert str(caught.value).startswith(f"{found} cannot be read by the gateway") and MARKER not in str(caught.value)


def test_a_bmp_under_another_type_is_found_by_its_first_bytes_and_encoded_again():
    out = io.BytesIO()
    Image.new("RGB", (12, 9), (200, 40, 10)).save(out, "BMP")
    original = out.getvalue() + MARKER.encode()  # whatever trails the pixels does not leave
    assert claims_image("application/octet-stream", original)
    assert not claims_image("text/plain", b"BMKG: gempa M5.1, tidak berpotensi tsunami")
    cleaned = strip(original, "application/octet-stream", filename="scan.bin")
    assert cleaned.content_type == "image/bmp" and MARKER.encode() not in cleaned.data
    assert pixels(cleaned.data) == pixels(original)


def test_other_files_pass_unchanged():
    pdf = b"%PDF-1.4\n1 0 obj <</Author (someone)>> endobj\n%%EOF\n"
    content = AttachmentContent("surat.pdf", "application/pdf", pdf)
    assert strip_metadata(content) is content


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00" + MARKER.encode() + b"garbage", "image/jpeg"),
        (b"not an image at all, " + MARKER.encode(), "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "image/png"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(32), "image/heic"),
    ],
    ids=["truncated-jpeg", "text-as-jpeg", "broken-png", "heic"],
)
def test_a_file_that_says_it_is_an_image_and_cannot_be_read_is_refused_with_a_reason(data, content_type):
    with pytest.raises(UnreadableImage) as caught:
        strip(data, content_type, filename="ktp_budi.jpg")
    reason = str(caught.value)
    assert content_type in reason and "budi" not in reason and MARKER not in reason


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # pytest resets the module's filter
def test_a_decompression_bomb_is_refused_not_decoded():
    out = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(out, "PNG")  # 144 M pixels in a few kB
    with pytest.raises(UnreadableImage, match="pixels"):
        strip(out.getvalue(), "image/png")


def test_a_lossless_webp_stays_lossless():
    out = io.BytesIO()
    picture = Image.new("RGB", (16, 16), (10, 200, 30))
    picture.putpixel((3, 3), (255, 0, 255))
    picture.save(out, "WEBP", lossless=True, exif=_artist(MARKER))
    assert MARKER.encode() in out.getvalue()
    cleaned = strip(out.getvalue(), "image/webp").data
    assert MARKER.encode() not in cleaned and b"VP8L" in cleaned and pixels(cleaned) == pixels(out.getvalue())


def test_a_multi_picture_jpeg_is_sent_as_its_photo_alone():
    out = io.BytesIO()
    second = Image.new("RGB", (8, 8), "blue")
    Image.new("RGB", (24, 16), "red").save(out, "MPO", save_all=True, append_images=[second], exif=_artist(MARKER))
    assert open_image(out.getvalue()).format == "MPO"
    cleaned = strip(out.getvalue(), "image/jpeg")
    image = open_image(cleaned.data)
    assert image.format == "JPEG" and image.size == (24, 16) and getattr(image, "n_frames", 1) == 1
    assert MARKER.encode() not in cleaned.data and b"MPF" not in cleaned.data


def _artist(name: str) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = name
    return exif


def test_many_frames_count_as_many_pixels():
    out = io.BytesIO()
    frames = [Image.new("L", (3000, 3000), shade) for shade in range(10)]  # 90 M pixels, a few kB
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    with pytest.raises(UnreadableImage, match="10 frames is over 80,000,000 pixels"):
        strip(out.getvalue(), "image/tiff")
