"""Images for the attachment tests: made here with Pillow, with metadata planted where phones
and editors put it (EXIF with GPS, XMP, PNG text chunks), and read back by Pillow."""

from __future__ import annotations

import io

from PIL import ExifTags, Image, PngImagePlugin


def png(width: int, height: int, *, text: dict[str, str] | None = None, color=(30, 120, 200)) -> bytes:
    """A PNG of one colour with a gradient row (so pixels show a turn), with ``tEXt`` chunks."""
    image = _picture(width, height, color)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def photo_exif(marker: str, *, orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it, with ``marker`` in the description, the artist, the user comment
    and the GPS block (its processing method), and a GPS position in Semarang."""
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = f"{marker} description"
    exif[ExifTags.Base.Artist] = f"{marker} artist"
    exif[ExifTags.Base.Make] = "Xiaomi"
    exif[ExifTags.Base.Model] = "Redmi Note 12"
    exif[ExifTags.Base.Orientation] = orientation
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.UserComment] = b"ASCII\x00\x00\x00" + f"{marker} comment".encode()
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2026:11:29 08:15:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (6.0, 58.0, 52.1)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (110.0, 24.0, 33.3)
    gps[ExifTags.GPS.GPSProcessingMethod] = b"ASCII\x00\x00\x00" + f"{marker} gps".encode()
    return exif


def xmp(marker: str) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="{marker} xmp"/>'
        "</rdf:RDF></x:xmpmeta>"
    ).encode()


def jpeg(width: int, height: int, *, marker: str | None = None, orientation: int = 1) -> bytes:
    """A JPEG ``width`` x ``height`` as stored (a phone stores it sideways and says so in its
    orientation), with EXIF, XMP and a comment carrying ``marker``."""
    image = _picture(width, height, (200, 60, 40))
    out = io.BytesIO()
    options = {}
    if marker is not None:
        options = {"exif": photo_exif(marker, orientation=orientation), "xmp": xmp(marker), "comment": f"{marker} com"}
    image.save(out, "JPEG", quality=95, **options)
    return out.getvalue()


def other_format(fmt: str, width: int, height: int, *, marker: str) -> bytes:
    """A WebP, TIFF or GIF with what that format can carry: EXIF and XMP (WebP), EXIF with XMP
    (TIFF), a comment (GIF)."""
    image = _picture(width, height, (90, 160, 60))
    out = io.BytesIO()
    if fmt == "WEBP":
        image.save(out, "WEBP", exif=photo_exif(marker), xmp=xmp(marker), quality=90)
    elif fmt == "TIFF":
        exif = photo_exif(marker)
        exif[700] = xmp(marker)  # the XMP tag
        image.save(out, "TIFF", exif=exif)
    else:
        image.convert("P").save(out, "GIF", comment=f"{marker} comment".encode())
    return out.getvalue()


def _picture(width: int, height: int, color) -> Image.Image:
    image = Image.new("RGB", (width, height), color)
    for x in range(width):  # the top row darkens to the right: a turned picture shows it elsewhere
        image.putpixel((x, 0), (x * 255 // max(1, width - 1), 0, 0))
    return image


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    image = open_image(data).convert("RGB")
    return image.size, image.tobytes()


def gps_of(data: bytes) -> dict:
    return dict(open_image(data).getexif().get_ifd(ExifTags.IFD.GPSInfo))
