"""The dashboard's Deploy and Roll back buttons in a real browser (Debian's Chromium through
Playwright), on the sandbox: the server's deploy worker (a real process) runs them, and the
page shows their progress, without a reload, until the slot serves the release, verified."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer
from tests.sandbox.dashboard_pages import SECRET, sign_in
from tests.sandbox.deploying import commit_of, deploy, served, worker
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
DONE_TIMEOUT = 180_000  # ms: a deploy under the test machine's load


@pytest.fixture(scope="module")
def app_url(sandbox, provisioned) -> Iterator[str]:
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    registry = PostgresRegistry(sandbox.env()["STAGING_REGISTRY_DSN"], max_connections=4)
    app = create_app(registry, jwt_secret=SECRET, inventory=load_inventory(sandbox.inventory_path))
    with BackgroundServer(app, threads=4) as server, worker(sandbox):
        yield server.url
    registry.close()


def test_deploy_and_roll_back_from_the_dashboard(
    sandbox,
    app_url: str,
    browser: Browser,
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, f"{app_url}/staging", mint_token(SECRET, "qa@example.com"))

    page.get_by_role("button", name=f"Deploys of staging-{SLOT}").click()
    dialog = page.locator("#deploy-dialog")
    expect(dialog).to_be_visible()
    branch = dialog.get_by_label("Branch to deploy")
    expect(branch).to_have_value("main")  # the slot's branch
    main_release = dialog.locator('#releases li[data-state="verified"]').first
    expect(main_release).to_contain_text("live")
    release_name = main_release.get_attribute("data-release")

    branch.fill("feat-x")
    dialog.get_by_role("button", name="Deploy", exact=True).click()
    progress = page.locator("#deploy-progress-text")
    expect(progress).to_contain_text(re.compile("running step [0-9]+"), timeout=60_000)
    expect(progress).to_contain_text(f"done, staging-{SLOT} serves feat-x", timeout=DONE_TIMEOUT)
    assert served(sandbox, SLOT) == commit_of(sandbox, "feat-x")
    expect(dialog.locator("#recent-deploys li").first).to_contain_text("deploy of feat-x via api")

    rollback = dialog.get_by_role("button", name=f"Roll back staging-{SLOT} to {release_name}")
    rollback.click()
    expect(progress).to_contain_text(f"Rolling staging-{SLOT} back to {release_name}")
    expect(progress).to_contain_text("done", timeout=DONE_TIMEOUT)
    assert served(sandbox, SLOT) == commit_of(sandbox, "main")
    live = dialog.locator(f'#releases li[data-release="{release_name}"]')
    expect(live).to_contain_text("live")
    expect(dialog.locator("#recent-deploys li").first).to_contain_text("rollback")
    page.screenshot(path="test-artifacts/dashboard-deploys.png")
    context.close()
    assert errors == []


def test_a_failed_deploy_shows_its_lines(sandbox, app_url: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, f"{app_url}/staging", mint_token(SECRET, "qa@example.com"))
    page.get_by_role("button", name=f"Deploys of staging-{SLOT}").click()
    dialog = page.locator("#deploy-dialog")
    dialog.get_by_label("Branch to deploy").fill("broken-start")
    dialog.get_by_role("button", name="Deploy", exact=True).click()
    progress = page.locator("#deploy-progress-text")
    expect(progress).to_contain_text("failed: ", timeout=DONE_TIMEOUT)
    expect(page.locator("#deploy-lines")).to_contain_text("last lines of")
    expect(dialog.locator("#recent-deploys li").first).to_contain_text("failed")
    assert served(sandbox, SLOT) == commit_of(sandbox, "main")  # the previous one serves on
    context.close()
