"""The demo never trips: any number of runs, logged in or not, at any hour, on any later day; and the
addresses it prints are ones a tablet can open."""

import ipaddress
import os
import re
import socket
import subprocess
from datetime import timedelta

import pytest

from kiosk.clock import local_day
from kiosk.ops.tls import lan_addresses
from kiosk.program import events
from kiosk.program.demo import create_demo
from kiosk.trust import accounts as auth

from support import ROOT, answers, free_port, wait_until


def test_the_lan_addresses_are_this_laptops_own_and_never_loopback():
    found = lan_addresses()
    for address in found:
        assert not ipaddress.ip_address(address).is_loopback
        with socket.socket() as s:
            s.bind((address, 0))  # an address of this machine: a tablet on its network can reach it
    has_interface = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    if any(ipaddress.ip_address(a).version == 4 for a in has_interface):
        assert found, "the hostname resolves to loopback, yet the laptop's interface must be found"


def test_the_demo_runs_again_after_a_login_and_moves_to_a_later_day(db, data_dir):
    first = create_demo(db, data_dir)
    user = auth.get_user(db, "coordinator")
    login = auth.start_session(db, user["id"])  # a coordinator logged in between the runs
    later = local_day() + timedelta(days=9)
    again = create_demo(db, data_dir, today=later)
    assert not again["created"] and again["moved_days"] == 9 and again["password"] != first["password"]
    assert auth.session_user(db, login) is None  # the old login ended with the old password
    assert auth.authenticate(db, "coordinator", again["password"])
    cohort = events.get_cohort(db, first["program_id"], 1)
    days = [s["day"] for s in events.sessions(db, cohort["id"])]
    assert days == [later.isoformat(), (later + timedelta(days=1)).isoformat()]
    today = events.sessions(db, cohort["id"])[0]
    assert (today["opens_at"], today["closes_at"]) == ("00:00", "23:59")  # open at any hour of its day


def _run_demo(data_dir, port: int, now: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "KIOSK_DATA": str(data_dir), "PORT": str(port), "KIOSK_TEST_NOW": now,
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([str(ROOT / "scripts" / "demo.sh"), "--no-setup"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []

    def password():
        line = process.stdout.readline()
        lines.append(line)
        if not line and process.poll() is not None:
            raise AssertionError("demo.sh ended:\n" + "".join(lines))
        found = re.search(r"Coordinator login: coordinator / (\S+)", line)
        return found and found.group(1)
    secret = wait_until(password, 300, "the demo's login")
    wait_until(answers("GET", f"http://127.0.0.1:{port}/api/ping", process), 60, "the demo server")
    return process, secret


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _log_in(page, port: int, password: str) -> None:
    page.goto(f"http://127.0.0.1:{port}/login?lang=en")
    page.fill("input[name=username]", "coordinator")
    page.fill("input[name=password]", password)
    page.click("button.primary")


@pytest.mark.browser
@pytest.mark.slow
def test_the_demo_runs_twice_with_a_login_between_at_two_in_the_night(tmp_path, chromium):
    data, port = tmp_path / "demo-data", free_port()
    night = f"{local_day().isoformat()}T02:00+07:00"
    page = chromium().new_page(viewport={"width": 1280, "height": 900})
    process, first = _run_demo(data, port, night)
    try:
        _log_in(page, port, first)
        page.wait_for_url(f"http://127.0.0.1:{port}/")
        assert "Check-in is open now" in page.locator("main").inner_text()  # 02:00, and the door works
    finally:
        _stop(process)
    process, second = _run_demo(data, port, night)  # crashed with FOREIGN KEY constraint failed before
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        assert "/login" in page.url  # the first run's login ended with its password
        _log_in(page, port, first)
        assert "Wrong user name or password" in page.locator("main").inner_text()
        _log_in(page, port, second)
        page.wait_for_url(f"http://127.0.0.1:{port}/")
        sessions = page.evaluate("fetch('/api/sessions').then(r => r.json())")
        assert [s["open"] for s in sessions["sessions"]] == [True]
    finally:
        _stop(process)
