"""Image metadata removed before a file leaves the gateway (UU PDP: a photo's EXIF holds the
reporter's GPS position, the phone's make and serial, the time it was taken; XMP and IPTC can
hold a name).

Every file the delivery sends (to the hub, and to a local app) passes through :func:`strip_metadata`
after its download and before its upload. An image is decoded and encoded again with only its
pixels, its ICC colour profile (it describes the camera's colours, not a person) and its
resolution: EXIF (with its GPS block, maker notes and the thumbnail that carries EXIF of its own),
XMP, IPTC/Photoshop blocks, comments, PNG text chunks and anything after the image's end are left
behind because nothing else is written. The EXIF orientation is applied to the pixels first, so a
photo taken upright on a phone is not shown sideways once its orientation tag is gone.

A file that says it is an image (by its type or its first bytes: also a HEIC, AVIF or BMP sent as
``application/octet-stream``) and cannot be decoded is refused (:class:`UnreadableImage`): sending
it would send whatever metadata it holds. Other files (PDF ...)
pass unchanged: docs/architecture.md names that gap.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import Any

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from gateway._model import AttachmentContent

#: Pillow's format -> the type it is sent as, for the formats whose metadata is removed here.
FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "BMP": "image/bmp",  # no metadata of its own, but encoded again all the same: only pixels leave
}
#: Image types Pillow cannot decode without a plugin the gateway does not install (libheif):
#: refused by name, since their metadata cannot be removed.
UNREADABLE_TYPES = {"image/heic", "image/heif", "image/avif"}
JPEG_QUALITY = 90  # a photo encoded again: no visible loss, about the size a phone writes
# An image bigger than this many pixels (all its frames) is refused, not decoded: a small file can
# decode to gigabytes. Below Pillow's own warning (89 M pixels), which so says nothing new here; a
# filter, not warnings.catch_warnings(), which is not safe in the worker threads this runs in.
MAX_PIXELS = 80_000_000
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module="PIL")

# First bytes of the image formats a file may carry under another type (application/octet-stream).
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
# HEIF and AVIF are ISO base media files: a ``ftyp`` box first, whose major brand names the image
# kind (a phone's photo is HEIC; ``mif1``/``msf1`` are HEIF's generic brands).
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"hevc": "image/heic", b"heif": "image/heif"}
_HEIF_BRANDS |= {b"mif1": "image/heif", b"msf1": "image/heif", b"avif": "image/avif"}
# A BMP's 2-byte "BM" is too short to go by alone: its info header's size (offset 14) must be one
# of the versions' (OS/2 12, Windows 40 to 124).
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


class UnreadableImage(ValueError):
    """A file that says it is an image and cannot be decoded: its metadata cannot be removed."""


def claims_image(content_type: str | None, data: bytes) -> bool:
    """Whether a file is an image by its declared type or by its first bytes."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind.startswith("image/"):
        return True
    return (
        data.startswith(_SIGNATURES)
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or _heif_type(data) is not None
        or (data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES)
    )


def _heif_type(data: bytes) -> str | None:
    """``image/heic``, ``image/heif`` or ``image/avif`` for an ISO-BMFF image, by its major brand."""
    return _HEIF_BRANDS.get(data[8:12]) if data[4:8] == b"ftyp" else None


def strip_metadata(content: AttachmentContent) -> AttachmentContent:
    """``content`` without its image metadata (the same object when it is not an image).

    Raises :class:`UnreadableImage` with a reason an operator can read (no file name in it)."""
    if not claims_image(content.content_type, content.data):
        return content
    kind = content.content_type.split(";")[0].strip().lower()
    kind = _heif_type(content.data) or kind  # a HEIC photo under application/octet-stream is still one
    if kind in UNREADABLE_TYPES:
        raise UnreadableImage(
            f"{kind} cannot be read by the gateway, so its metadata (GPS position, device) cannot be removed"
        )
    try:
        with Image.open(io.BytesIO(content.data)) as image:
            # A phone's multi-picture JPEG (MPO: a preview or depth map after the photo, each
            # with EXIF of its own) is sent as the photo alone.
            fmt = "JPEG" if image.format == "MPO" else image.format or ""
            if fmt not in FORMATS:
                raise UnreadableImage(
                    f"declared {kind or 'an image'}, found {fmt or 'an unknown format'}: its metadata cannot be removed"
                )
            frames = 1 if fmt == "JPEG" else getattr(image, "n_frames", 1)
            if image.width * image.height * frames > MAX_PIXELS:
                raise UnreadableImage(
                    f"{image.width}x{image.height} pixels x {frames} frames is over {MAX_PIXELS:,} pixels"
                )
            data = _encode(image, fmt, lossless=fmt == "WEBP" and _lossless_webp(content.data))
    except UnreadableImage:
        raise
    except Image.DecompressionBombError:
        raise UnreadableImage(f"too many pixels to decode safely (over {MAX_PIXELS:,})") from None
    except UnidentifiedImageError:
        raise UnreadableImage(f"declared {kind or 'an image'} but it is not an image the gateway can read") from None
    except Exception as exc:  # a broken file fails a decoder in many ways: none may stop the complaint
        raise UnreadableImage(
            f"declared {kind or 'an image'} but it cannot be decoded ({type(exc).__name__})"
        ) from None
    return AttachmentContent(content.filename, FORMATS[fmt], data)


def _encode(image: Image.Image, fmt: str, *, lossless: bool) -> bytes:
    """The image's frames, upright, in ``fmt`` with only what is not about a person."""
    frames = [_clean(frame) for frame in _frames(image, fmt)]
    first, rest = frames[0], frames[1:]
    options: dict[str, Any] = {"format": fmt}
    if icc := image.info.get("icc_profile"):
        options["icc_profile"] = icc
    if dpi := image.info.get("dpi"):
        options["dpi"] = dpi
    if fmt == "JPEG":
        options["quality"] = JPEG_QUALITY
        if first.mode not in ("RGB", "L", "CMYK"):
            first = first.convert("RGB")
    elif fmt == "PNG":
        options["optimize"] = False
    elif fmt == "WEBP":
        options["quality"] = JPEG_QUALITY
        options["lossless"] = lossless
    elif fmt == "TIFF":
        # The original compression where Pillow can write it (a scan's LZW stays LZW).
        compression = image.info.get("compression")
        options["compression"] = compression if compression in ("raw", "tiff_lzw", "tiff_deflate", "jpeg") else None
    if rest:
        options["save_all"] = True
        options["append_images"] = rest
        for key in ("duration", "loop"):  # an animation keeps its timing
            if key in image.info:
                options[key] = image.info[key]
    out = io.BytesIO()
    first.save(out, **options)
    return out.getvalue()


def _frames(image: Image.Image, fmt: str) -> Iterator[Image.Image]:
    if fmt == "JPEG" or getattr(image, "n_frames", 1) == 1:
        yield image
        return
    yield from ImageSequence.Iterator(image)


def _clean(frame: Image.Image) -> Image.Image:
    """The frame's pixels turned as its EXIF orientation says, in a new image that carries no
    ``info`` and no TIFF tags of the original (Pillow writes those back when it saves)."""
    upright = ImageOps.exif_transpose(frame) or frame
    pixels = upright.copy()  # decoded; a plain Image, so no tag_v2 of a TIFF source
    pixels.info = {k: v for k, v in frame.info.items() if k == "transparency"}
    return pixels


def _lossless_webp(data: bytes) -> bool:
    """Whether a WebP holds its picture losslessly (a ``VP8L`` chunk, not ``VP8 ``): then it is
    written lossless again, not made lossy by the cleaning."""
    offset = 12
    while offset + 8 <= len(data):
        fourcc, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        if fourcc == b"ANMF":  # an animation: its first frame's bitstream, after the frame header
            offset += 8 + 16
            continue
        offset += 8 + size + (size & 1)
    return False
