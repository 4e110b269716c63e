"""Profiles in a real browser at a phone's width: a launcher fills in their profile with a photo
(and sees a refused file explained beside its field, the rest kept), the public sees only what
they made public; an employer adds the company's logo and description. Every page is checked
by axe-core and must fit the screen."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy.orm import sessionmaker

from core.settings import Settings
from dev.harness import Inbox
from tests.conftest import Api
from tests.e2e.browser import (
    PHONE,
    SKIP_REASON,
    Pages,
    ask_for_sign_in_link,
    chromium_present,
    fits_the_screen,
    person,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON),
]


def photo(folder: Path, name: str, size: tuple[int, int]) -> Path:
    path = folder / name
    Image.new("RGB", size, (30, 90, 200)).save(path)
    return path


async def test_profiles_on_a_phone(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
    tmp_path: Path,
) -> None:
    from tests.stack.test_web import employer_account, launcher_account

    pages = Pages("profiles")
    launcher_id, email = launcher_account(sessions, settings)
    phone = await person(chromium, people, api, PHONE)
    await phone.goto("/settings")
    await ask_for_sign_in_link(phone, inbox, email)
    await phone.get_by_label("Headline", exact=True).fill("Marketing student who loves data")
    await phone.get_by_label("School", exact=True).fill("Riverside College")
    await phone.get_by_label("Graduation year", exact=True).fill("2027")
    await phone.get_by_label("LinkedIn", exact=True).fill("https://www.linkedin.com/in/lee")
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("only text")
    await phone.get_by_label("Photo", exact=True).set_input_files(not_an_image)
    await phone.get_by_role("button", name="Update my profile").click()
    await expect(phone.get_by_text("That file is not a PNG, JPEG or WebP image")).to_be_visible()
    await expect(phone.get_by_label("School", exact=True)).to_have_value("Riverside College")
    await pages.check(phone, "a refused photo")
    await fits_the_screen(phone)

    me = photo(tmp_path, "me.jpg", (900, 1200))
    await phone.get_by_label("Photo", exact=True).set_input_files(me)
    await phone.get_by_role("checkbox", name="The headline").check()
    await phone.get_by_role("button", name="Update my profile").click()
    await expect(phone.get_by_text("Your profile is saved.")).to_be_visible()
    await pages.check(phone, "profile saved")
    await fits_the_screen(phone)
    await phone.get_by_label("Anyone with the link").check()
    await phone.get_by_role("button", name="Save who sees it").click()

    stranger = await person(chromium, people, api, PHONE)
    await stranger.goto(f"/launchers/{launcher_id}")
    await expect(stranger.get_by_text("Marketing student who loves data")).to_be_visible()
    await expect(stranger.get_by_text("Riverside College")).to_have_count(0)
    await pages.check(stranger, "public portfolio")
    await fits_the_screen(stranger)

    _, employer_email = employer_account(sessions, settings)
    boss = await person(chromium, people, api, PHONE)
    await boss.goto("/settings")
    await ask_for_sign_in_link(boss, inbox, employer_email)
    await boss.get_by_label("Website", exact=True).fill("https://northwind.example.com")
    await boss.get_by_label("Short description", exact=True).fill("Pet food, " * 40)
    logo_file = photo(tmp_path, "logo.png", (1600, 400))
    await boss.get_by_label("Logo", exact=True).set_input_files(logo_file)
    await boss.get_by_role("button", name="Update the company's profile").click()
    await expect(boss.get_by_text("Your company's profile is saved")).to_be_visible()
    logo = boss.locator("img.avatar-logo")
    src = await logo.get_attribute("src")
    assert src and re.fullmatch(r"/images/[A-Za-z0-9_-]+\.png", src)
    served = await boss.request.get(src)
    assert served.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(await served.body())).size == (400, 100)
    await pages.check(boss, "company profile")
    await fits_the_screen(boss)
