"""The Staging Dashboard in a real browser: Debian's headless Chromium driven by Playwright,
against the real app (waitress on loopback) on a real, migrated registry database.

"Another operator" is the registry itself, written to directly while the page is open.
A screenshot of the page is written to test-artifacts/ (dashboard.png, dashboard-375.png).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import requests
from playwright.sync_api import Browser, Dialog, Page, expect

from devtools import sandbox as sandbox_mod
from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer
from tests.conftest import ROOT, sandbox_ports
from tests.sandbox.dashboard_pages import sign_in

SECRET = "test-secret-for-the-staging-dashboard-0123456789"
ARTIFACTS = ROOT / "test-artifacts"
OPERATOR = "operator@example.com"
HOUR = timedelta(hours=1)


@dataclass
class Dashboard:
    url: str
    registry: PostgresRegistry

    @property
    def page_url(self) -> str:
        return f"{self.url}/staging"

    def token(self, ttl_seconds: int = 600, subject: str = OPERATOR, **extra: object) -> str:
        return mint_token(SECRET, subject, ttl_seconds, **extra)

    def board(self, token: str) -> requests.Response:
        return requests.get(
            f"{self.page_url}/board.json", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )


@pytest.fixture
def dashboard(registry_dsn: str, test_inventory_path: Path) -> Iterator[Dashboard]:
    """The real app (API + dashboard) on a fresh registry database, on a loopback port."""
    inventory = load_inventory(test_inventory_path)
    migrate(registry_dsn, inventory)
    registry = PostgresRegistry(registry_dsn, max_connections=4, cache_reads=True)
    app = create_app(registry, jwt_secret=SECRET, inventory=inventory)
    with BackgroundServer(app, threads=4) as server:
        yield Dashboard(server.url, registry)
    registry.close()


@dataclass
class Watched:
    """A page, and everything it did that a test may want to assert on afterwards."""

    page: Page
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (url, authorization)
    errors: list[str] = field(default_factory=list)


def _watch(browser: Browser, width: int = 1280, height: int = 900) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(5000)
    page = context.new_page()
    watched = Watched(page)
    page.on("request", lambda r: watched.requests.append((r.url, r.headers.get("authorization"))))
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    return watched


@pytest.fixture
def watched(browser: Browser, dashboard: Dashboard) -> Iterator[Watched]:
    watched = _watch(browser)
    yield watched
    watched.page.context.close()
    assert watched.errors == [], "the page's script failed"
    # Offline and private: every request (assets and API) went to the app itself.
    assert all(url.startswith(dashboard.url + "/") for url, _ in watched.requests), watched.requests


def row(page: Page, slot: int) -> dict[str, object]:
    """Locators of one slot's row and its cells by column label."""
    tr = page.locator(f'#slots tr[data-slot="{slot}"]')
    return {
        "row": tr,
        **{
            label: tr.locator(f'td[data-label="{label}"]')
            for label in ("Status", "Task", "Owner", "Branch", "Commit", "Expires", "Health")
        },
    }


# ---- the main flow ----------------------------------------------------------------------------


def test_sign_in_claim_release_and_conflict(watched: Watched, dashboard: Dashboard) -> None:
    page = watched.page
    page.goto(dashboard.page_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-reason")).to_contain_text("not signed in")
    expect(page.locator("#board")).to_be_hidden()

    token = dashboard.token()
    sign_in(page, dashboard.page_url, token)
    expect(page.locator("#slots tbody tr")).to_have_count(10)
    expect(page.locator("#session-subject")).to_have_text(OPERATOR)
    expect(page.get_by_role("heading", name="Sign in")).to_be_hidden()
    five = row(page, 5)
    expect(five["Status"]).to_have_text("free")

    # Claim slot 5 through the form.
    five["row"].get_by_role("button", name="Claim staging-5").click()
    dialog = page.locator("#claim-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Owner")).to_have_value(OPERATOR)  # prefilled: the token's subject
    dialog.get_by_label("Task").fill("ja-5")
    dialog.get_by_label("Owner").fill("alice@example.com")
    dialog.get_by_label("Time to live").fill("2h")
    dialog.get_by_label("Note").fill("QA of the <b>new</b> importer")
    dialog.get_by_role("button", name="Claim", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#notice")).to_contain_text("Claimed staging-5 for JA-5")
    expect(five["Status"]).to_have_text("claimed")
    expect(five["Owner"]).to_have_text("alice@example.com")
    expect(five["Expires"]).to_have_text("in 2 h")
    link = five["Task"].get_by_role("link", name="JA-5")
    expect(link).to_have_attribute("href", "https://linear.app/justapply/issue/JA-5")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    state = dashboard.registry.get(5)
    assert (state.task, state.owner, state.note) == (
        "JA-5",
        "alice@example.com",
        "QA of the <b>new</b> importer",
    )
    expect(page.locator("#events li").first).to_contain_text("claim by alice@example.com")
    expect(page.locator("#events li").first).to_contain_text("via api:operator@example.com")
    assert page.locator("#events b").count() == 0  # the note is text, never markup

    # Release it: the confirmation is asked, accepting it frees the slot.
    questions: list[str] = []

    def accept(question: Dialog) -> None:
        questions.append(question.message)
        question.accept()

    page.once("dialog", accept)
    five["row"].get_by_role("button", name="Release staging-5").click()
    expect(five["Status"]).to_have_text("free")
    assert "Release staging-5?" in questions[0] and "JA-5" in questions[0]
    expect(page.locator("#notice")).to_contain_text("Released staging-5 (was JA-5")
    assert dashboard.registry.get(5).status == "free"

    # A conflict in words: another operator takes slot 6 while our claim form is open.
    row(page, 6)["row"].get_by_role("button", name="Claim staging-6").click()
    dialog.get_by_label("Task").fill("JA-6")
    dashboard.registry.claim(6, "JA-66", "bob@example.com", HOUR, None)
    dialog.get_by_role("button", name="Claim", exact=True).click()
    problem = page.locator("#claim-error")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("Claiming staging-6 for JA-6 was refused, conflict")
    expect(problem).to_contain_text("held by task JA-66 (owner bob@example.com)")
    expect(dialog).to_be_visible()  # kept open, with what was typed, to try something else
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row(page, 6)["Task"]).to_contain_text("JA-66")
    assert dashboard.registry.get(6).task == "JA-66"

    # The token never appears in the document, and was only ever sent to the app itself.
    assert token not in page.content()
    assert token not in requests.get(dashboard.page_url, timeout=10).text
    sent = [url for url, auth in watched.requests if auth == f"Bearer {token}"]
    assert sent and all(url.startswith(dashboard.url + "/") for url in sent)


def test_another_operators_claims_appear_without_reload(
    watched: Watched, dashboard: Dashboard
) -> None:
    page = watched.page
    dashboard.registry.claim(2, "JA-120", "dana@example.com", timedelta(days=3), "regression run")
    dashboard.registry.record_deploy(2, "main", "9f8e7d6c5b4a39281706", "dana@example.com")
    sign_in(page, dashboard.page_url, dashboard.token())
    expect(row(page, 2)["Branch"]).to_have_text("main")
    page.evaluate("window.sameDocument = true")  # gone if the page were reloaded

    started = time.monotonic()
    dashboard.registry.claim(7, "JA-77", "carol@example.com", timedelta(days=2), "checking import")
    dashboard.registry.record_deploy(7, "feat-x", "0123456789abcdef0123", "carol@example.com")
    seven = row(page, 7)
    expect(seven["Task"]).to_contain_text("JA-77", timeout=10_000)
    expect(seven["Commit"]).to_have_text("0123456", timeout=10_000)
    assert time.monotonic() - started < 10
    expect(seven["Branch"]).to_have_text("feat-x")
    expect(seven["Expires"]).to_have_text("in 2 d")
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator("#events li").first).to_contain_text("staging-7")
    # Health of the sandbox's slots (nothing deployed there: "down"), checked in the background.
    expect(seven["Health"]).to_contain_text("UI down", timeout=10_000)

    # A release by the other operator shows up as well.
    dashboard.registry.release(2, "dana@example.com")
    expect(row(page, 2)["Status"]).to_have_text("free", timeout=10_000)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


# ---- signing in ------------------------------------------------------------------------------


def test_a_token_with_a_string_exp_gets_the_board(dashboard: Dashboard) -> None:
    """PyJWT accepts a numeric-string `exp`; the board must not turn that into a 500."""
    exp = int(time.time()) + 600
    token = jwt.encode({"sub": OPERATOR, "admin": True, "exp": str(exp)}, SECRET, "HS256")
    for _ in range(2):
        response = dashboard.board(token)
        assert response.status_code == 200, response.text
    assert response.json()["token_expires_at"].startswith(
        datetime.fromtimestamp(exp, UTC).isoformat()[:19]
    )


def test_expired_and_refused_tokens_say_so_and_offer_sign_in(
    watched: Watched, dashboard: Dashboard
) -> None:
    page = watched.page
    sign_in(page, dashboard.page_url, dashboard.token(ttl_seconds=-120))
    expect(page.locator("#problem-text")).to_have_text(
        "Your admin token has expired. Sign in again with a fresh one."
    )
    expect(page.get_by_label("Admin token (JWT)")).to_be_visible()
    expect(page.locator("#board")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0

    sign_in(page, dashboard.page_url, dashboard.token(admin=False))
    expect(page.locator("#problem-text")).to_contain_text("not an admin token")

    # Signed in, then the token expires while the page is open: the next refresh says so.
    sign_in(page, dashboard.page_url, dashboard.token())
    expect(page.locator("#slots tbody tr")).to_have_count(10)
    expired = dashboard.token(ttl_seconds=-120)
    page.evaluate("t => sessionStorage.setItem('staging-ops:admin-token', t)", expired)
    page.reload()
    expect(page.locator("#problem-text")).to_contain_text("has expired")
    expect(page.locator("#slots tbody tr")).to_have_count(0)  # nothing left on screen
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()

    # Signing out forgets the token.
    sign_in(page, dashboard.page_url, dashboard.token())
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#notice")).to_contain_text("Signed out")
    assert page.evaluate("sessionStorage.length") == 0


# ---- keyboard, labels, narrow screens ---------------------------------------------------------

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden')
  .filter(e => e.tagName === 'BUTTON'
    ? !(e.getAttribute('aria-label') || e.textContent.trim())
    : e.labels.length === 0)
  .map(e => e.outerHTML)"""


def _tab_to(page: Page, selector: str, presses: int = 80) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_keyboard_only_and_every_control_labelled(watched: Watched, dashboard: Dashboard) -> None:
    page = watched.page
    page.goto(dashboard.page_url)
    assert page.evaluate(UNLABELLED) == []
    _tab_to(page, "#signin-token")
    page.keyboard.type(dashboard.token())
    page.keyboard.press("Enter")
    expect(page.locator("#slots tbody tr")).to_have_count(10)
    assert page.evaluate(UNLABELLED) == []

    _tab_to(page, '[aria-label="Claim staging-9"]')
    page.keyboard.press("Enter")
    expect(page.locator("#claim-dialog")).to_be_visible()
    expect(page.get_by_label("Task")).to_be_focused()
    page.keyboard.type("JA-9")
    page.keyboard.press("Enter")
    expect(page.locator("#claim-dialog")).to_be_hidden()
    expect(row(page, 9)["Status"]).to_have_text("claimed")
    assert dashboard.registry.get(9).owner == OPERATOR

    # Focus follows the re-rendered row: the claimed slot's first action, Extend.
    expect(page.get_by_role("button", name="Extend the claim on staging-9")).to_be_focused()
    page.keyboard.press("Enter")
    extend = page.locator("#extend-dialog")
    expect(extend.get_by_label("Keep it for")).to_have_value("7d")
    page.keyboard.press("Control+A")
    page.keyboard.type("3d")
    page.keyboard.press("Enter")
    expect(extend).to_be_hidden()
    expect(page.locator("#notice")).to_contain_text("Extended staging-9 for JA-9")
    expect(row(page, 9)["Expires"]).to_have_text("in 3 d")
    assert dashboard.registry.get(9).ttl_seconds == 3 * 86400


def test_a_link_to_a_slot_shows_its_row(watched: Watched, dashboard: Dashboard) -> None:
    """The log_url on a PR and the Linear task (`…#staging-9`): that slot's row, in view and
    focused, once the board is there."""
    page = watched.page
    sign_in(page, dashboard.page_url + "#staging-9", dashboard.token())
    expect(page.locator("#staging-9 th")).to_be_focused()
    expect(page.locator("#staging-9")).to_be_in_viewport()
    assert page.locator("#staging-9").get_attribute("data-slot") == "9"


def test_narrow_screen_has_no_horizontal_scroll(browser: Browser, dashboard: Dashboard) -> None:
    long = "a-branch-name-long-enough-to-overflow-a-phone-screen-if-it-did-not-wrap"
    dashboard.registry.claim(3, "JA-3", "someone.with.a.long.name@example.com", HOUR, long)
    dashboard.registry.record_deploy(3, f"feature/{long}", "abcdef0123456789", "someone")
    watched = _watch(browser, width=375, height=740)
    page = watched.page
    try:
        page.goto(dashboard.page_url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        sign_in(page, dashboard.page_url, dashboard.token())
        expect(page.locator("#slots tbody tr")).to_have_count(10)
        expect(row(page, 3)["Branch"]).to_contain_text("feature/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-375.png"), full_page=True)
        row(page, 4)["row"].get_by_role("button", name="Claim staging-4").click()
        box = page.locator("#claim-dialog").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert watched.errors == []
    finally:
        page.context.close()


# ---- without a browser: the server's side of the rules ----------------------------------------


def test_board_needs_a_token_and_cross_origin_writes_are_refused(dashboard: Dashboard) -> None:
    assert dashboard.board("").status_code == 401
    assert dashboard.board(dashboard.token(ttl_seconds=-120)).json() == {"error": "token expired"}
    page = requests.get(dashboard.page_url, timeout=10)
    assert page.status_code == 200 and "Staging slots" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it anyway

    claim = {"slot_id": 8, "task": "JA-8"}
    headers = {"Authorization": f"Bearer {dashboard.token()}"}
    for hostile in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a slot's app on a sibling subdomain
    ):
        refused = requests.put(
            f"{dashboard.url}/api/staging/slots",
            json=claim,
            headers={**headers, **hostile},
            timeout=10,
        )
        assert refused.status_code == 403, hostile
        assert refused.json() == {"error": "cross-origin request refused"}
    assert dashboard.registry.get(8).status == "free"
    same_origin = {"Origin": dashboard.url, "Sec-Fetch-Site": "same-origin"}
    allowed = requests.put(
        f"{dashboard.url}/api/staging/slots",
        json=claim,
        headers={**headers, **same_origin},
        timeout=10,
    )
    assert allowed.status_code == 200, allowed.text


def test_without_an_inventory_the_board_still_shows_the_registry(
    registry_dsn: str, test_inventory_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(registry_dsn, load_inventory(test_inventory_path))
    monkeypatch.setenv("STAGING_INVENTORY", str(test_inventory_path.parent / "missing.toml"))
    registry = PostgresRegistry(registry_dsn, max_connections=2, cache_reads=True)
    try:
        with BackgroundServer(create_app(registry, jwt_secret=SECRET)) as server:
            board = Dashboard(server.url, registry).board(mint_token(SECRET, OPERATOR)).json()
    finally:
        registry.close()
    assert "inventory could not be loaded" in board["inventory_error"]
    assert board["linear_url"] is None
    assert [s["slot"] for s in board["slots"]] == list(range(1, 11))
    assert {s["url"] for s in board["slots"]} == {None}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(entry.partition("=")[::2] for entry in raw.split("\0") if "=" in entry)


def test_sandbox_serves_the_dashboard_until_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """`invoke sandbox.up` starts the API + dashboard and a deploy worker as processes of the
    sandbox, both in the environment it runs in (the GitHub and Linear settings reach them)."""
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx-dash-"))
    directory.chmod(0o755)
    monkeypatch.setenv("STAGING_GITHUB_API_URL", "http://127.0.0.1:9/github")
    monkeypatch.setenv("STAGING_LINEAR_API_KEY", "lin_test_key")
    try:
        box = sandbox_mod.up(directory, slots=2, ports=sandbox_ports(400), dashboard=True)
        for process in ("dashboard", "deploy-worker"):
            environ = _environ(box.pids[process])
            assert environ["STAGING_GITHUB_API_URL"] == "http://127.0.0.1:9/github", process
            assert environ["STAGING_LINEAR_API_KEY"] == "lin_test_key", process
        url = box.env()["STAGING_DASHBOARD_URL"]
        assert url == f"http://127.0.0.1:{sandbox_ports(400).dashboard}/staging"
        assert f"export STAGING_DASHBOARD_URL={url}" in box.env_path.read_text()
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "Staging slots" in page.text
        token = mint_token(box.env()["STAGING_API_JWT_SECRET"], OPERATOR)
        board = requests.get(
            f"{url}/board.json", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        # A fresh sandbox's registry is not migrated yet (provision-all does that): the
        # dashboard answers, and says so without details.
        assert board.status_code == 503 and board.json() == {"error": "registry unavailable"}
        pids = [box.pids["dashboard"], box.pids["deploy-worker"]]
        assert sandbox_mod.status(directory)["processes"]["dashboard"] is True
        assert sandbox_mod.status(directory)["processes"]["deploy-worker"] is True
        assert {"dashboard", "deploy-worker"} <= set(sandbox_mod.down(directory))
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat")
            assert not stat.exists() or stat.read_text().split(") ")[1][0] == "Z"  # gone
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
