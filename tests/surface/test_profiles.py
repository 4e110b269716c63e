"""Profiles over the pages and the JSON API: a launcher's profile on the applications an
employer reads and on their portfolio (only the parts they made public, for the public), a
company's on its postings; images uploaded on the settings page, checked, resized, served by a
random key; a refused upload says why beside its field and keeps what was typed."""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy import select

from core.db import Employer, Launcher
from core.internship import Role, Stage
from tests.surface.conftest import CSRF, FORM_KEY, Browser, Surface

IMAGE = re.compile(r'src="/images/([^"]+)"')


def png(size: tuple[int, int] = (800, 500)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    out = io.BytesIO()
    Image.new("RGB", (900, 1200), (10, 120, 60)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


PROFILE = {
    "headline": "Marketing student who loves data",
    "school": "Riverside College",
    "graduation_year": "2027",
    "skills": "research, Excel",
    "website": "https://lee.example.com/work",
    "linkedin": "https://www.linkedin.com/in/lee-launcher",
    "github": "https://github.com/leelauncher",
}


async def upload(
    browser: Browser,
    action: str,
    fields: Mapping[str, str | list[str]],
    files: dict[str, tuple[str, bytes, str]] | None = None,
    csrf: bool = True,
) -> httpx.Response:
    """Send the settings page's form to `action` as the browser does: multipart."""
    html = (await browser.get("/settings")).text
    token, key = CSRF.search(html), FORM_KEY.search(html)
    assert token and key
    data: dict[str, str | list[str]] = {"form_key": key.group(1), **fields}
    if csrf:
        data["csrf_token"] = token.group(1)
    return await browser.http.post(action, data=data, files=files or {"avatar": ("", b"", "")})


def stored(surface: Surface) -> set[str]:
    folder = Path(surface.settings.data_dir) / "files"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


async def launcher_with_profile(
    surface: Surface, public: list[str] | None = None, name: str = "Lee Launcher"
) -> tuple[Launcher, Browser]:
    lee = surface.launcher(name)
    browser = await surface.signed_in(lee.email)
    fields: dict[str, str | list[str]] = {**PROFILE, "public_parts": public or []}
    saved = await upload(
        browser, "/settings/profile", fields, {"avatar": ("me.png", png(), "image/png")}
    )
    assert saved.status_code == 303, saved.text
    return lee, browser


# ---------------------------------------------------------------- the launcher's profile


async def test_a_launcher_saves_a_profile_and_the_settings_page_shows_it(
    surface: Surface,
) -> None:
    lee, browser = await launcher_with_profile(surface)
    page = (await browser.get("/settings")).text
    assert "Your profile is saved." in page
    for value in ("Marketing student who loves data", "Riverside College", "2027"):
        assert f'value="{value}"' in page
    assert 'value="excel, research"' in page
    assert IMAGE.search(page), "the photo is shown"
    with surface.sessions() as db:
        row = db.get(Launcher, lee.id)
        assert row is not None and row.skills == ["excel", "research"]
        assert row.linkedin_url == PROFILE["linkedin"] and row.graduation_year == 2027


async def test_an_employer_sees_the_applicants_profiles(surface: Surface) -> None:
    lee, _ = await launcher_with_profile(surface)
    ann = surface.launcher("Ann Other")  # no profile: her initials
    employer = surface.employer()
    state = surface.internship(employer, applicants=[lee, ann])
    browser = await surface.signed_in(employer.email)
    page = (await browser.get(f"/internships/{state.posting.internship_id}")).text
    assert "Marketing student who loves data" in page
    assert "Riverside College, class of 2027" in page
    for url in (PROFILE["website"], PROFILE["linkedin"], PROFILE["github"]):
        assert f'<a href="{url}" rel="nofollow noopener">' in page
    [key] = IMAGE.findall(page)
    assert lee.id not in key
    assert '<span class="avatar avatar-small initials" aria-hidden="true">AO</span>' in page
    assert "About Northwind" not in page  # a company with nothing to show is not a card


async def test_private_parts_stay_off_the_public_portfolio(surface: Surface) -> None:
    lee, browser = await launcher_with_profile(surface, public=["headline"])
    await browser.submit("/settings", "/settings/portfolio", visibility="public")
    async with surface.client() as anyone:
        public = await anyone.get(f"/launchers/{lee.id}")
    assert public.status_code == 200
    assert "Marketing student who loves data" in public.text
    assert "Riverside College" not in public.text and "2027" not in public.text
    assert "linkedin.com" not in public.text and "github.com/leelauncher" not in public.text
    assert not IMAGE.search(public.text) and ">LL</span>" in public.text  # initials, no photo
    assert "Completed work" in public.text  # the portfolio itself is kept
    employer = surface.employer()
    signed_in = await surface.signed_in(employer.email)
    seen = (await signed_in.get(f"/launchers/{lee.id}")).text
    assert "Riverside College, class of 2027" in seen and IMAGE.search(seen)


async def test_a_text_file_renamed_png_is_refused_beside_the_field_and_the_form_kept(
    surface: Surface,
) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    before = stored(surface)
    sent = await upload(
        browser,
        "/settings/profile",
        {**PROFILE, "public_parts": ["links"]},
        {"avatar": ("photo.png", b"not an image, only text", "image/png")},
    )
    assert sent.status_code == 422
    assert re.search(
        r'<span class="error-text" id="f-avatar-error">That file is not a PNG, JPEG or WebP '
        r"image \(your photo is unchanged\)</span>",
        sent.text,
    )
    assert 'value="Marketing student who loves data"' in sent.text
    assert 'value="https://github.com/leelauncher"' in sent.text
    assert re.search(r'value="links"\s+checked', sent.text)
    with surface.sessions() as db:
        row = db.get(Launcher, lee.id)
        assert row is not None and row.headline is None and row.avatar_key is None
    assert stored(surface) == before


async def test_a_too_big_upload_is_refused_with_its_size_and_the_form_kept(
    surface: Surface,
) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    big = noise_png((1500, 1300))
    assert len(big) > surface.settings.max_image_bytes
    sent = await upload(
        browser, "/settings/profile", PROFILE, {"avatar": ("big.png", big, "image/png")}
    )
    assert sent.status_code == 422
    assert "choose one of 5 MB or less (your photo is unchanged)" in sent.text
    assert 'value="Riverside College"' in sent.text


async def test_a_wrong_field_keeps_the_rest_and_says_what_to_fix(surface: Surface) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    typed = {
        **PROFILE,
        "linkedin": "https://evil.example.com/lee",
        "website": "javascript:alert(1)",
        "graduation_year": "next year",
        "headline": "x" * 121,
    }
    sent = await upload(browser, "/settings/profile", typed)
    assert sent.status_code == 422
    assert "Give the address of your profile on linkedin.com" in sent.text
    assert "Give a full web address, starting with https://" in sent.text
    assert "Give a year in digits, like 2027" in sent.text
    assert "Keep it to 120 characters or fewer (this is 121)" in sent.text
    assert 'value="Riverside College"' in sent.text and 'value="next year"' in sent.text


async def test_what_a_launcher_types_is_escaped(surface: Surface) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    fields = {**PROFILE, "headline": '<script>alert("x")</script>', "school": "A & B <i>"}
    assert (await upload(browser, "/settings/profile", fields)).status_code == 303
    employer = surface.employer()
    state = surface.internship(employer, applicants=[lee])
    viewer = await surface.signed_in(employer.email)
    page = (await viewer.get(f"/internships/{state.posting.internship_id}")).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "A &amp; B &lt;i&gt;" in page


async def test_the_upload_form_still_needs_its_csrf_token(surface: Surface) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    sent = await upload(
        browser, "/settings/profile", PROFILE, {"avatar": ("me.png", png(), "image/png")}, False
    )
    assert sent.status_code == 403 and "This form has expired" in sent.text
    with surface.sessions() as db:
        assert db.scalar(select(Launcher.headline).where(Launcher.id == lee.id)) is None


# ---------------------------------------------------------------- images


async def test_an_image_is_served_resized_with_nosniff_and_nothing_of_its_uploader(
    surface: Surface,
) -> None:
    lee, browser = await launcher_with_profile(surface)
    [key] = IMAGE.findall((await browser.get("/settings")).text)
    async with surface.client() as anyone:
        served = await anyone.get(f"/images/{key}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert "content-disposition" not in served.headers
    assert lee.id not in key and "me.png" not in key and lee.id not in served.text
    assert Image.open(io.BytesIO(served.content)).size == (256, 256)
    async with surface.client() as anyone:
        assert (await anyone.get("/images/unknownunknownunknown.png")).status_code == 404
        assert (await anyone.get("/images/..%2Fapp.db")).status_code in (404, 422)


async def test_exif_and_gps_are_stripped_from_an_uploaded_photo(surface: Surface) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    photo = jpeg_with_gps()
    sent = await upload(
        browser, "/settings/profile", PROFILE, {"avatar": ("me.jpg", photo, "image/jpeg")}
    )
    assert sent.status_code == 303
    [key] = IMAGE.findall((await browser.get("/settings")).text)
    async with surface.client() as anyone:
        served = await anyone.get(f"/images/{key}")
    assert served.headers["content-type"] == "image/jpeg"
    assert b"PhoneMaker" not in served.content and b"Exif" not in served.content
    assert not dict(Image.open(io.BytesIO(served.content)).getexif())


async def test_replacing_or_removing_a_photo_deletes_the_old_file(surface: Surface) -> None:
    lee, browser = await launcher_with_profile(surface)
    [first] = IMAGE.findall((await browser.get("/settings")).text)
    assert first in stored(surface)
    again = await upload(
        browser, "/settings/profile", PROFILE, {"avatar": ("new.png", png((300, 300)), "image/png")}
    )
    assert again.status_code == 303
    [second] = IMAGE.findall((await browser.get("/settings")).text)
    assert second != first and first not in stored(surface) and second in stored(surface)
    async with surface.client() as anyone:
        assert (await anyone.get(f"/images/{first}")).status_code == 404
    removed = await upload(browser, "/settings/profile", {**PROFILE, "remove_avatar": "1"})
    assert removed.status_code == 303 and second not in stored(surface)
    assert not IMAGE.search((await browser.get("/settings")).text)


async def test_a_photo_is_kept_served_and_replaced_in_either_storage(
    surface_any_storage: Surface,
) -> None:
    """The same pages with FILE_STORAGE=folder and with FILE_STORAGE=s3 (a real S3 server):
    the photo is stored where the settings say, served from there, and a replaced one is
    gone from there."""
    surface = surface_any_storage
    files = surface.app.state.files
    _, browser = await launcher_with_profile(surface)
    [first] = IMAGE.findall((await browser.get("/settings")).text)
    kept = await asyncio.to_thread(files.get, first)
    assert kept is not None and Image.open(io.BytesIO(kept)).size == (256, 256)
    in_folder = (Path(surface.settings.data_dir) / "files" / first).exists()
    assert in_folder == (surface.settings.file_storage == "folder")
    async with surface.client() as anyone:
        served = await anyone.get(f"/images/{first}")
    assert served.status_code == 200 and served.content == kept
    again = await upload(
        browser, "/settings/profile", PROFILE, {"avatar": ("new.png", png((300, 300)), "image/png")}
    )
    assert again.status_code == 303
    [second] = IMAGE.findall((await browser.get("/settings")).text)
    assert second != first and await asyncio.to_thread(files.get, first) is None
    async with surface.client() as anyone:
        assert (await anyone.get(f"/images/{first}")).status_code == 404
        assert (await anyone.get(f"/images/{second}")).status_code == 200


# ---------------------------------------------------------------- the company's profile


async def test_a_company_profile_shows_on_postings_and_the_internship_page(
    surface: Surface,
) -> None:
    employer = surface.employer()
    browser = await surface.signed_in(employer.email)
    fields = {"website": "https://northwind.example.com", "description": "We make <b>pet food</b>."}
    sent = await upload(
        browser, "/settings/company", fields, {"logo": ("logo.png", png((1200, 300)), "image/png")}
    )
    assert sent.status_code == 303, sent.text
    state = surface.internship(employer)
    lee = surface.launcher()
    launcher = await surface.signed_in(lee.email)
    for path in ("/postings", f"/internships/{state.posting.internship_id}"):
        page = (await launcher.get(path)).text
        assert "We make &lt;b&gt;pet food&lt;/b&gt;." in page, path
        assert '<a href="https://northwind.example.com/" rel="nofollow noopener">' in page, path
        [key] = IMAGE.findall(page)
        assert employer.id not in key
    async with surface.client() as anyone:
        logo = await anyone.get(f"/images/{key}")
    assert Image.open(io.BytesIO(logo.content)).size == (400, 100)


async def test_a_refused_logo_keeps_the_description(surface: Surface) -> None:
    employer = surface.employer()
    browser = await surface.signed_in(employer.email)
    sent = await upload(
        browser,
        "/settings/company",
        {"website": "https://northwind.example.com", "description": "Pet food since 1990."},
        {"logo": ("logo.webp", b"GIF89a not really", "image/webp")},
    )
    assert sent.status_code == 422
    assert "That file is not a PNG, JPEG or WebP image (your logo is unchanged)" in sent.text
    assert "Pet food since 1990." in sent.text
    with surface.sessions() as db:
        assert db.scalar(select(Employer.description).where(Employer.id == employer.id)) is None


# ---------------------------------------------------------------- the JSON API


async def test_the_api_reads_and_changes_profiles(surface: Surface) -> None:
    lee, employer, ann = surface.launcher(), surface.employer(), surface.launcher("Ann Other")
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as api:
        changed = await api.patch(
            "/v1/launchers/me/profile",
            json={
                "headline": "Data nerd",
                "github": "https://github.com/lee",
                "skills": ["SQL", "research"],
                "public_parts": [],
            },
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["skills"] == ["research", "sql"]
        assert changed.json()["headline"] == "Data nerd" and changed.json()["public_parts"] == []
        me = (await api.get("/v1/me")).json()
        assert me["profile"]["github"] == "https://github.com/lee"
        assert me["profile"]["initials"] == "LL"
        bad = await api.patch("/v1/launchers/me/profile", json={"linkedin": "https://x.com/lee"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        assert "linkedin.com" in bad.text
        year = await api.patch("/v1/launchers/me/profile", json={"graduation_year": "2027"})
        assert year.status_code == 422
        cleared = await api.patch("/v1/launchers/me/profile", json={"headline": None})
        assert cleared.json()["headline"] is None and cleared.json()["github"]
    async with surface.client(surface.token(Role.LAUNCHER, ann.id)) as other:
        seen = (await other.get(f"/v1/launchers/{lee.id}/portfolio")).json()["profile"]
        assert seen["github"] is None and seen["public_parts"] is None
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as api:
        seen = (await api.get(f"/v1/launchers/{lee.id}/portfolio")).json()["profile"]
        assert seen["github"] == "https://github.com/lee"
        company = await api.patch(
            "/v1/employers/me/profile", json={"description": "Pet food.", "website": None}
        )
        assert company.status_code == 200 and company.json()["description"] == "Pet food."
        me = (await api.get("/v1/me")).json()
        assert me["company_profile"] == {
            "company": "Northwind",
            "website": None,
            "description": "Pet food.",
            "logo_url": None,
            "initials": "N",
        }
        too_long = await api.patch("/v1/employers/me/profile", json={"description": "x" * 501})
        assert too_long.status_code == 422 and "500 characters or fewer" in too_long.text
        state = surface.internship(employer, Stage.POSTED, applicants=[lee])
        ranked = (await api.get(f"/v1/internships/{state.posting.internship_id}/applicants")).json()
        assert ranked[0]["profile"]["github"] == "https://github.com/lee"


async def test_an_upload_far_over_the_limit_is_stopped_before_it_is_read(surface: Surface) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    limit = 2 * surface.settings.max_image_bytes + surface.settings.max_body_bytes
    huge = b"\0" * (limit + 1)
    sent = await upload(
        browser, "/settings/profile", PROFILE, {"avatar": ("huge.png", huge, "image/png")}
    )
    assert sent.status_code == 413 and "That form was too large to send" in sent.text
    # Only the upload forms take bodies that large: any other form keeps the usual limit.
    other = await browser.http.post("/settings/tokens", data={"name": "x" * 200_000})
    assert other.status_code == 413
