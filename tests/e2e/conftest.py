"""The browser tests' fixtures: one Chromium for the session, and a browser profile per person."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def people(chromium: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Each person gets their own browser profile (cookies), as on their own computer."""
    contexts: list[BrowserContext] = []
    yield contexts
    for context in contexts:
        await context.close()
