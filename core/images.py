"""Profile images: checked by their content, resized and re-encoded, stored under a random key.

Only PNG, JPEG and WebP are taken, whatever the file is called or says it is: Pillow must
recognise the bytes as one of them, verify the file and decode it whole. What is stored is a
new encoding of the decoded pixels (turned upright by its EXIF orientation first), so no
metadata of the upload survives: no EXIF (camera, GPS position), no text chunks, no comments.
An avatar is cropped square to 256x256; a logo is fitted into 400x400.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from core.files import FileStore, new_key

# Pillow's format name -> the stored key's extension and the Content-Type it is served with.
FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {ext: mime for ext, mime in FORMATS.values()}
ACCEPT = ",".join(mime for _, mime in FORMATS.values())  # for <input type=file accept>
# Larger images are refused before decoding (a small file can decode to gigabytes).
MAX_PIXELS = 40_000_000


class ImageRefused(ValueError):
    """The upload is not an image we take; the message says why, in plain words."""


@dataclass(frozen=True)
class Shape:
    """How an image is stored: cropped to exactly `size`, or fitted within it."""

    size: tuple[int, int]
    crop: bool


AVATAR = Shape((256, 256), crop=True)
LOGO = Shape((400, 400), crop=False)


def megabytes(n: int) -> str:
    """A size as people read it: "5 MB", "6.3 MB", "120 KB"."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(n / 1024))} KB"


def _decoded(data: bytes, max_bytes: int) -> tuple[Image.Image, str]:
    if not data:
        raise ImageRefused("That file is empty: choose a PNG, JPEG or WebP image")
    if len(data) > max_bytes:
        raise ImageRefused(
            f"That image is {megabytes(len(data))}: choose one of {megabytes(max_bytes)} or less"
        )
    not_an_image = ImageRefused("That file is not a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as probe:
                if probe.width * probe.height > MAX_PIXELS:
                    raise ImageRefused(
                        f"That image is {probe.width}x{probe.height} pixels: choose a smaller one"
                    )
                fmt = str(probe.format)
                probe.verify()
            image = Image.open(io.BytesIO(data), formats=[fmt])
            image.load()
    except ImageRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning) as err:
        raise not_an_image from err
    except Image.DecompressionBombError as err:
        raise ImageRefused("That image has too many pixels: choose a smaller one") from err
    return image, fmt


def _pixels(image: Image.Image, fmt: str) -> Image.Image:
    """The first frame, upright, in RGB (RGBA if it has transparency and the format keeps it)."""
    image.seek(0)
    upright = ImageOps.exif_transpose(image) or image
    transparent = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if transparent and fmt != "JPEG" else "RGB"
    converted = upright.convert(mode)
    # A new image holding the pixels alone: nothing of the upload's info (EXIF, ICC, text).
    clean = Image.new(mode, converted.size)
    clean.paste(converted)
    return clean


def prepare(data: bytes, shape: Shape, max_bytes: int) -> tuple[bytes, str]:
    """The stored form of an upload and its extension; ImageRefused if it is not taken."""
    image, fmt = _decoded(data, max_bytes)
    with image:
        pixels = _pixels(image, fmt)
    if shape.crop:
        pixels = ImageOps.fit(pixels, shape.size, Image.Resampling.LANCZOS)
    else:
        pixels.thumbnail(shape.size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=85, optimize=True)
    elif fmt == "WEBP":
        pixels.save(out, "WEBP", quality=85)
    else:
        pixels.save(out, "PNG", optimize=True)
    return out.getvalue(), FORMATS[fmt][0]


def store_image(store: FileStore, data: bytes, shape: Shape, max_bytes: int) -> str:
    """Check, resize and re-encode an upload, store it under a new random key; the key."""
    encoded, extension = prepare(data, shape, max_bytes)
    key = new_key(extension)
    store.put(key, encoded)
    return key


def content_type(key: str) -> str | None:
    """The Content-Type a stored image is served with (None: not an image key)."""
    _, dot, extension = key.rpartition(".")
    return CONTENT_TYPES.get(extension) if dot else None
