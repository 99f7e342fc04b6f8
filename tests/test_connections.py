"""Issue 20 (findings 8 and 9): the door keeps answering while another computer on the venue
network abuses connections - holds hundreds idle, or trickles a request a byte at a time - over
plain HTTP and over HTTPS; and `kiosk serve` offers local users no Unix socket to hold, nor a
child process to hang on."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kiosk.trust import accounts as auth

from support import answers, child_pids, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 and /proc")]



@pytest.fixture
def door(db, open_event, accounts):
    """The door's staff token and the people it scans."""
    return auth.issue_token(db, "door"), [p["code"] for p in open_event["people"]]


@pytest.fixture(params=["http", "https"])
def kiosk(request, data_dir, door):
    """`kiosk serve` (plain, or --https with the kiosk's own CA) on 127.0.0.1: (base url, requests verify)."""
    port = free_port()
    https = request.param == "https"
    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         *(["--https"] if https else [])],
        env={**os.environ, "KIOSK_DATA": str(data_dir)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, verify = f"{request.param}://127.0.0.1:{port}", str(data_dir / "ca.pem") if https else True
    try:
        wait_until(lambda: not https or (data_dir / "ca.pem").exists(), 30, "the kiosk CA")
        wait_until(answers("GET", url + "/api/ping", process, verify=verify), 30, f"{url} to answer")
        yield url, verify, process, port
    finally:
        process.kill()
        process.wait()


def scan(url: str, verify, token: str, code: str) -> tuple[float, dict]:
    """A door scan on a fresh connection: (seconds to the answer, the answer)."""
    started = time.monotonic()
    answer = requests.post(url + "/api/checkins", json={"code": code}, headers={"Authorization": f"Bearer {token}"},
                           verify=verify, timeout=10)
    return time.monotonic() - started, answer.json()


def _links(folder: Path) -> list[str]:
    found = []
    for fd in folder.iterdir():
        try:
            found.append(os.readlink(fd))
        except FileNotFoundError:  # closed meanwhile
            continue
    return found


def _listening_unix_inodes() -> set[str]:
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return {f[6] for f in (line.split() for line in lines) if int(f[3], 16) & 0x10000}  # __SO_ACCEPTCON


def test_kiosk_serve_listens_on_no_unix_socket_and_starts_no_child_process(kiosk, door):
    """Finding 9 closed with issue 19: the door's writer process and its socket are gone."""
    url, verify, process, _ = kiosk
    token, codes = door
    assert scan(url, verify, token, codes[2])[1]["ok"] is True
    sockets = {link[8:-1] for link in _links(Path(f"/proc/{process.pid}/fd")) if link.startswith("socket:[")}
    assert sockets and not sockets & _listening_unix_inodes()
    assert child_pids(process.pid) == []
