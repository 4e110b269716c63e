"""Chromium for the browser tests: Debian's `chromium`, driven by Playwright (its own browser
download can't work on machines that reach only package registries), with axe-core checking
each page, each page proven to fit a desktop's and a phone's width, and a screenshot of each
page at both widths kept in tests/artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Error, Page, ViewportSize

from dev.harness import Inbox, links_in
from tests.conftest import Api

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SKIP_REASON = (
    "BROWSER TESTS SKIPPED: no Chromium at "
    f"{CHROMIUM} (install it: apt-get install -y chromium, or set CHROMIUM=/path)"
)
# Without these, Chromium on a machine with a closed network keeps trying Google's services.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"

_axe = Axe()

DESKTOP = ViewportSize(width=1280, height=900)
# A phone held upright (an iPhone 14's CSS pixels): pages must fit its width.
PHONE = ViewportSize(width=390, height=844)
# The box applying and kicking off tick: they accept the internship's terms.
TERMS_BOX = "I accept the terms of this internship"


def chromium_present() -> bool:
    return Path(CHROMIUM).exists()


async def fits_the_screen(page: Page) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling on a phone)."""
    wider = await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const over = [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > width + 1)
                .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                    + (e.className ? "." + String(e.className).split(" ").join(".") : ""));
            return {scroll: document.documentElement.scrollWidth - width, over: over.slice(0, 5)};
        }"""
    )
    width = (page.viewport_size or DESKTOP)["width"]
    assert wider["scroll"] <= 0 and not wider["over"], (
        f"{page.url} is wider than a {width} px window: {wider}"
    )


async def screenshot(page: Page, path: Path, tries: int = 3) -> None:
    """A full-page screenshot, kept as the journey's record. Chromium now and then answers a
    capture with "Unable to capture screenshot" (seen once in CI, on a busy machine with several
    people's pages open); the page is the same a moment later, so it is taken again."""
    for attempt in range(1, tries + 1):
        try:
            await page.screenshot(path=path, full_page=True)
            return
        except Error as err:
            if "Unable to capture screenshot" not in err.message or attempt == tries:
                raise
            await page.wait_for_timeout(500)


class Pages:
    """Checks and photographs every page a journey opens, at the journey's width and at the
    other of a phone's and a desktop's."""

    def __init__(self, journey: str) -> None:
        self.journey = journey
        self.count = 0
        self.checked: list[str] = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def check(self, page: Page, name: str) -> None:
        """At the page's own width and then re-rendered at the other width (a phone's, or a
        desktop's for a journey on a phone): the content fits the window, axe-core finds no
        violation of any impact, and a full-page screenshot is kept (`-phone` or `-desktop`)."""
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        own = page.viewport_size or DESKTOP
        other, suffix = (DESKTOP, "desktop") if own["width"] <= PHONE["width"] else (PHONE, "phone")
        await self._check_at(page, name, f"{self.journey}-{self.count:02d}-{slug}")
        await page.set_viewport_size(other)
        try:
            await self._check_at(
                page,
                f"{name} at {other['width']} px",
                f"{self.journey}-{self.count:02d}-{slug}-{suffix}",
            )
        finally:
            await page.set_viewport_size(own)
        self.checked.append(name)

    async def _check_at(self, page: Page, name: str, file: str) -> None:
        await screenshot(page, SCREENSHOTS / f"{file}.png")
        await fits_the_screen(page)
        results = await _axe.run(page)
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3])
            for v in results.response["violations"]
        ]
        assert not violations, f"{name} ({page.url}) is not accessible:\n" + "\n".join(violations)


async def person(
    chromium: Browser,
    people: list[BrowserContext],
    api: Api,
    viewport: ViewportSize = DESKTOP,
    time_zone: str = "UTC",
) -> Page:
    # The browser's own zone, which it tells the sign-up (static/zone.js).
    context = await chromium.new_context(base_url=api.url, viewport=viewport, timezone_id=time_zone)
    context.set_default_timeout(20_000)
    people.append(context)
    return await context.new_page()


async def ask_for_sign_in_link(page: Page, inbox: Inbox, email: str) -> None:
    """On the sign-in page: ask for a link, open it from the email and press its button."""
    before = inbox.count_to(email, "sign_in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await follow_sign_in_link(page, inbox, email, before)


async def follow_sign_in_link(
    page: Page, inbox: Inbox, email: str, after: int = 0, kind: str = "sign_in"
) -> None:
    """Open the sign-in email (or, `kind` "sign_up", the new account's) after the first `after`
    in this browser and press its button."""
    # Up to a minute: the relay's poll and SMTP under `make test`'s parallel processes, browsers
    # included, on 2 cores (15 s ran out once).
    message = await inbox.wait_to(email, kind, after, within=60)
    link = next(u for u in links_in(message) if "/sign-in/" in u)
    await page.goto(link)
    button = "Create my account" if kind == "sign_up" else "Sign in"
    await page.get_by_role("button", name=button).click()
