"""The console's pages in a real browser (Debian's Chromium, driven by Playwright) beside a
real ``garrison run`` on the private engine: log in, watch a violation arrive on *Container
Audits* without a reload, change a rule's effect to prevent on the policy page and see the next
exec refused, see a blocked container listed with ``effect=block`` and unblock it from its page.

Each page is saved as a screenshot (``GARRISON_SCREENSHOTS=docs/images`` refreshes those the
documentation shows)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    EPERM,
    put_rules,
    restart_policy,
    wait_stopped,
    watched,
)
from tests.support import free_port, wait_for

pytestmark = pytest.mark.engine

CHROMIUM = Path("/usr/bin/chromium")
# As root, without a sandbox; no call home (the machine's network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
RULES = """
rules:
  - name: shop nc
    scope: [{containers: ["shop-*"]}]
    processes: {denied: {effect: %s, paths: [nc]}}
"""
PREVENT = """name: shop nc
scope: [{containers: ["shop-*"]}]
processes: {denied: {effect: prevent, paths: [nc]}}
"""
Start = Callable[..., DefenderProcess]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install chromium"
    with sync_playwright() as driver:
        found = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield found
        finally:
            found.close()


class Shots:
    """Screenshots of the pages, named as docs/console.md shows them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        wanted = os.environ.get("GARRISON_SCREENSHOTS")
        self.publish = Path(wanted) if wanted else None

    def take(self, page: Page, name: str) -> None:
        path = self.folder / f"console-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if self.publish is not None:
            shutil.copy(path, self.publish / path.name)


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(tmp_path / "screens")


def console_beside(start_defender: Start) -> tuple[DefenderProcess, str]:
    port = free_port()
    defender = start_defender(learning="1h", args=["--console-address", f"127.0.0.1:{port}"])
    return defender, f"http://127.0.0.1:{port}"


def log_in(browser: Browser, url: str, defender: DefenderProcess) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{url}/audits")
    expect(page).to_have_url(f"{url}/login?next=/audits")
    password = (defender.data_dir / "initial-admin-password").read_text().strip()
    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/audits")
    page.wait_for_load_state("load")  # the page's own load is over before any is counted
    return page


def in_force(defender: DefenderProcess) -> None:
    """Wait until the defender runs the rules the store holds now."""
    digest = defender.console_call(lambda c: c.runtime_rules().digest()[:12])
    wait_for(f"rules {digest} in force", lambda: defender.status().get("rules") == digest)


def test_a_violation_appears_live_and_a_rule_set_to_prevent_refuses_the_next_exec(
    start_defender: Start, run_container: Any, browser: Browser, shots: Shots
) -> None:
    defender, url = console_beside(start_defender)
    put_rules(defender, RULES % "alert")
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="shop-1"))
    page = log_in(browser, url, defender)
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    box.exec_run(["/usr/bin/nc", "-h"])
    row = page.locator("#rows tr", has_text="shop-1").first
    expect(row).to_contain_text("nc", timeout=30_000)  # the live refresh brought it
    expect(row).to_contain_text("alert")
    assert loads == [], f"the page was reloaded: {loads}"
    shots.take(page, "audits")

    page.get_by_role("link", name="Runtime policy").click()
    shots.take(page, "policy")
    page.get_by_role("link", name="Edit shop nc").click()
    page.get_by_label("The rule").fill(PREVENT)
    shots.take(page, "rule-edit")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    in_force(defender)
    code, output = box.exec_run(["sh", "-c", "/usr/bin/nc -h"])
    assert code != 0
    assert f"/usr/bin/nc: {EPERM}" in output.decode()

    page.goto(f"{url}/audits?effect=prevent")
    refused = page.locator("#rows tr", has_text="shop-1").first
    expect(refused).to_contain_text("prevent", timeout=30_000)
    refused.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("prevent")
    shots.take(page, "audit")
    for name, path in (("dashboard", "/"), ("models", "/models"),
                       ("vulnerability", "/policy/vulnerability"),
                       ("compliance", "/policy/compliance")):  # fmt: skip
        page.goto(f"{url}{path}")
        shots.take(page, name)
    page.goto(f"{url}/models")
    page.locator("table a").first.click()
    shots.take(page, "model")


def test_a_blocked_container_is_listed_by_effect_and_unblocked_from_its_page(
    start_defender: Start, run_container: Any, browser: Browser, shots: Shots
) -> None:
    defender, url = console_beside(start_defender)
    put_rules(defender, RULES % "block")
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="shop-2",
                                          restart_policy={"Name": "always"}))  # fmt: skip
    page = log_in(browser, url, defender)
    box.exec_run(["/usr/bin/nc", "-h"])
    wait_stopped(box, "blocked for running nc")
    page.get_by_label("Effect").select_option("block")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/audits\?.*\beffect=block\b"))
    blocked = page.locator("table.blocked tr", has_text="shop-2")
    expect(blocked).to_contain_text(box.id[:12], timeout=30_000)
    expect(page.locator("#rows tr", has_text="shop-2").first).to_contain_text("block")
    shots.take(page, "audits-blocked")
    assert restart_policy(box) == "unless-stopped"  # stopped by Garrison: stays stopped

    page.get_by_role("link", name="Blocked", exact=True).click()
    shots.take(page, "blocked")
    page.get_by_role("button", name="Unblock shop-2").click()
    expect(page.get_by_role("status")).to_contain_text("shop-2 is unblocked")
    expect(page.get_by_text("No container is blocked.")).to_be_visible()
    assert restart_policy(box) == "always"
    assert defender.console_call(lambda c: c.list_blocked()) == []


def test_logging_in_with_the_keyboard_alone_after_a_wrong_password(
    browser: Browser, shots: Shots, start_defender: Start
) -> None:
    defender, url = console_beside(start_defender)
    password = (defender.data_dir / "initial-admin-password").read_text().strip()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    expect(page.get_by_label("User")).to_be_focused()
    shots.take(page, "login")
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    expect(page.get_by_label("User")).to_have_value("admin")
    page.get_by_label("Password").focus()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{url}/")
    page.keyboard.press("Tab")  # the first stop skips the navigation
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_the_pages_read_and_act_without_javascript(
    browser: Browser, start_defender: Start, run_container: Any
) -> None:
    defender, url = console_beside(start_defender)
    put_rules(defender, RULES % "block")
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="shop-3"))
    box.exec_run(["/usr/bin/nc", "-h"])
    wait_stopped(box, "blocked for running nc")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    password = (defender.data_dir / "initial-admin-password").read_text().strip()
    page.goto(f"{url}/blocked")
    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/blocked")
    page.get_by_role("button", name="Unblock shop-3").click()
    expect(page.get_by_role("status")).to_contain_text("shop-3 is unblocked")
    page.goto(f"{url}/audits?effect=block")
    expect(page.locator("#rows tr", has_text="shop-3").first).to_contain_text("block")
    context.close()
