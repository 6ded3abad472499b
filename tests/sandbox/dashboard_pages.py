"""The dashboard as the sandbox tests open it: Debian's Chromium (the `browser` fixture), the
real app on the shared sandbox's registry, signing in on its page, and one slot's Health cell
as a browser shows it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, not Playwright's download (which does not work on these machines); no
# network beyond what the page asks for, so a test can also tell that nothing leaves loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "test-secret-for-the-sandbox-dashboard-0123456789"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module; each test gets its own context (fresh storage)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: these tests need Debian's chromium package "
            "(scripts/setup.sh installs it; or: apt-get install chromium)"
        )
    # launch() (not launch_persistent_context) gives Chromium a fresh temporary user-data
    # directory of its own, removed when the browser closes.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def sign_in(page: Page, page_url: str, token: str) -> None:
    page.goto(page_url)
    page.get_by_label("Admin token (JWT)").fill(token)
    page.get_by_role("button", name="Sign in").click()


@contextmanager
def dashboard_app(box) -> Iterator[tuple[str, str]]:
    """The real app (API + dashboard) on the sandbox's registry and inventory: (page URL,
    admin token). A fresh app each time, so its health cache holds no earlier round."""
    inventory = load_inventory(box.inventory_path)
    registry = PostgresRegistry(box.registry_dsn, max_connections=2)
    app = create_app(registry, jwt_secret=SECRET, inventory=inventory)
    try:
        with BackgroundServer(app, threads=2) as server:
            yield f"{server.url}/staging", mint_token(SECRET, "operator@example.com", 600)
    finally:
        registry.close()


@contextmanager
def health_cell(browser: Browser, page_url: str, token: str, slot: int) -> Iterator[Locator]:
    """A slot's Health cell, on a signed-in page in a browser context of its own."""
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, page_url, token)
        yield page.locator(f'#slots tr[data-slot="{slot}"] td[data-label="Health"]')
    finally:
        context.close()
