"""Failed logins slow a guesser down: after ten failures for a name within five minutes, that
name is refused without a password check (429) until the window moves on; other names and
the right password later are unaffected."""

from __future__ import annotations

from garrison.web.throttle import MAX_PER_CLIENT, MAX_PER_NAME, WINDOW, LoginThrottle
from tests.web.conftest import PASSWORD, Site


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_failures_for_a_name_hold_it_off_until_the_window_moves_on(site: Site) -> None:
    clock = Clock()
    site.app.state.login_throttle = LoginThrottle(clock)
    client = site.client()
    for _ in range(MAX_PER_NAME):
        wrong = client.post("/login", data={"name": "auditor-1", "password": "guess"})
        assert wrong.status_code == 401
        clock.now += 1
    held = client.post("/login", data={"name": "auditor-1", "password": PASSWORD})
    assert held.status_code == 429
    assert "Too many failed logins: try again in 290 s" in held.text
    other = client.post("/login", data={"name": "operator-1", "password": PASSWORD})
    assert other.status_code == 303  # another name is not held
    clock.now += WINDOW
    again = client.post("/login", data={"name": "auditor-1", "password": PASSWORD})
    assert again.status_code == 303


def test_one_address_is_held_after_many_failures_over_many_names() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for i in range(MAX_PER_CLIENT):
        assert throttle.wait(f"user{i}", "198.51.100.7") == 0
        throttle.failed(f"user{i}", "198.51.100.7")
    assert throttle.wait("someone", "198.51.100.7") == WINDOW
    assert throttle.wait("someone", "198.51.100.8") == 0


def test_a_success_clears_the_names_failures() -> None:
    throttle = LoginThrottle(Clock())
    for _ in range(MAX_PER_NAME - 1):
        throttle.failed("alice", "a")
    throttle.succeeded("alice")
    throttle.failed("alice", "a")
    assert throttle.wait("alice", "a") == 0
