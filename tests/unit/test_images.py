"""Profile images as `core.images` takes them (by content, resized, re-encoded without their
metadata) and the folder `core.files` keeps them in."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from core.files import BadKey, FolderStore, new_key, valid_key
from core.images import AVATAR, LOGO, ImageRefused, content_type, prepare, store_image

LIMIT = 5 * 1024 * 1024


def encoded(size: tuple[int, int], fmt: str, mode: str = "RGB", **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 40, 40) if mode == "RGB" else (200, 40, 40, 128)).save(
        out, fmt, **save
    )
    return out.getvalue()


def with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS
    return encoded((1200, 900), "JPEG", exif=exif)


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_avatar_is_cropped_square_to_256_in_its_own_format(fmt: str) -> None:
    data, extension = prepare(encoded((1000, 600), fmt), AVATAR, LIMIT)
    image = opened(data)
    assert image.size == (256, 256) and image.format == fmt
    assert extension == {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt]


def test_a_logo_is_fitted_into_400_keeping_its_shape_and_transparency() -> None:
    data, _ = prepare(encoded((1600, 400), "PNG", mode="RGBA"), LOGO, LIMIT)
    image = opened(data)
    assert image.size == (400, 100) and image.mode == "RGBA"


def test_exif_and_gps_are_stripped() -> None:
    upload = with_gps()
    assert b"PhoneMaker" in upload and opened(upload).getexif().get(0x8825) is not None
    data, _ = prepare(upload, AVATAR, LIMIT)
    assert b"PhoneMaker" not in data and b"Exif" not in data
    assert not dict(opened(data).getexif())


@pytest.mark.parametrize(
    "upload",
    [
        b"just some text, renamed photo.png",
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,  # a PNG's signature, then nothing of a PNG
        encoded((40, 40), "GIF"),  # an image, but not a type we take
        encoded((40, 40), "BMP"),
        b"",
    ],
    ids=["text", "png-signature-only", "gif", "bmp", "empty"],
)
def test_what_is_not_a_png_jpeg_or_webp_is_refused_in_plain_words(upload: bytes) -> None:
    with pytest.raises(ImageRefused, match=r"PNG, JPEG or WebP"):
        prepare(upload, AVATAR, LIMIT)


def test_a_truncated_image_is_refused() -> None:
    whole = encoded((300, 300), "JPEG")
    with pytest.raises(ImageRefused):
        prepare(whole[: len(whole) // 2], AVATAR, LIMIT)


def noise(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def test_an_image_over_the_limit_is_refused_before_it_is_decoded() -> None:
    upload = noise((200, 200))
    assert len(upload) > 100_000
    with pytest.raises(ImageRefused, match=r"That image is 1\d\d KB: choose one of 98 KB or less"):
        prepare(upload, AVATAR, 100_000)
    assert prepare(upload, AVATAR, len(upload))[0]


def test_an_image_with_too_many_pixels_is_refused() -> None:
    huge = encoded((10_000, 5_000), "PNG", mode="RGB")  # one colour: a small file
    with pytest.raises(ImageRefused, match="10000x5000 pixels"):
        prepare(huge, AVATAR, LIMIT)


def test_the_folder_store_keeps_bytes_by_random_key(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "files")
    key = store_image(store, encoded((300, 300), "PNG"), AVATAR, LIMIT)
    assert valid_key(key) and key.endswith(".png") and content_type(key) == "image/png"
    assert [p.name for p in (tmp_path / "files").iterdir()] == [key]  # no temporary left
    assert opened(store.get(key) or b"").size == (256, 256)
    store.delete(key)
    store.delete(key)  # an unknown key is no error
    assert store.get(key) is None
    assert new_key() != new_key()


@pytest.mark.parametrize("key", ["../app.db", "a/b", ".hidden-file-name-x", "short", "x" * 80])
def test_a_key_cannot_name_a_path(tmp_path: Path, key: str) -> None:
    store = FolderStore(tmp_path)
    assert store.get(key) is None
    with pytest.raises(BadKey):
        store.put(key, b"x")


def test_rendering_a_document_leaves_truncated_images_refused() -> None:
    """weasyprint (the documents' PDFs), once imported, tells Pillow to load truncated images
    in the whole process; an avatar must still be refused after a PDF was rendered."""
    from datetime import UTC, datetime

    from core.db import Document
    from core.documents import render_pdf

    doc = Document(
        id=1, employer_id="org", internship_id="int", kind="receipt", number=1,
        amount_cents=40000, currency="usd", issued_at=datetime(2026, 12, 6, tzinfo=UTC),
        stripe_id="pi_1", internship_title="Research", billing_name="Acme",
        billing_address="", tax_id="", billing_email="billing@acme.example",
        launcher_name="", launcher_email="",
    )  # fmt: skip
    assert render_pdf(doc).startswith(b"%PDF")
    whole = encoded((300, 300), "JPEG")
    with pytest.raises(ImageRefused):
        prepare(whole[: len(whole) // 2], AVATAR, LIMIT)
