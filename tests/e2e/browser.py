"""Chromium for the browser tests: Debian's `chromium`, driven by Playwright (its own browser
download can't work on machines that reach only package registries), with axe-core checking
each page and a screenshot of each page kept in tests/artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

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


def chromium_present() -> bool:
    return Path(CHROMIUM).exists()


class Pages:
    """Checks and photographs every page a journey opens."""

    def __init__(self, journey: str) -> None:
        self.journey = journey
        self.count = 0
        self.checked: list[str] = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def check(self, page: Page, name: str) -> None:
        """Accessibility (axe-core: no violation of any impact) and a full-page screenshot."""
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        await page.screenshot(
            path=SCREENSHOTS / f"{self.journey}-{self.count:02d}-{slug}.png", full_page=True
        )
        results = await _axe.run(page)
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3])
            for v in results.response["violations"]
        ]
        assert not violations, f"{name} ({page.url}) is not accessible:\n" + "\n".join(violations)
        self.checked.append(name)
