"""Issue 20 (findings 8 and 9): the door keeps answering while another computer on the venue
network abuses connections - holds hundreds idle, or trickles a request a byte at a time - over
plain HTTP and over HTTPS; and `kiosk serve` offers local users no Unix socket to hold, nor a
child process to hang on."""

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kiosk.trust import accounts as auth

from support import answers, child_pids, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 and /proc")]

ABUSER = "127.0.0.2"  # another address of the loopback network: to the server, another computer
HEAD = b"POST /api/checkins HTTP/1.1\r\nHost: kiosk\r\nContent-Type: application/json\r\n"  # never finished


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


def connect(port: int, https: bool, ca: str | None) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(ABUSER, 0))
    if not https:
        return raw
    context = ssl.create_default_context(cafile=ca)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def hold(port: int, count: int, https: bool = False, ca: str | None = None) -> list[socket.socket]:
    """`count` connections from ABUSER, each with a request head begun and never finished."""
    held = []
    for _ in range(count):
        try:
            sock = connect(port, https, ca)
            sock.sendall(HEAD)
        except OSError:  # refused or reset by the server: it does not hold this one
            continue
        held.append(sock)
    return held


def scan(url: str, verify, token: str, code: str) -> tuple[float, dict]:
    """A door scan on a fresh connection: (seconds to the answer, the answer)."""
    started = time.monotonic()
    answer = requests.post(url + "/api/checkins", json={"code": code}, headers={"Authorization": f"Bearer {token}"},
                           verify=verify, timeout=10)
    return time.monotonic() - started, answer.json()


def closed_by_server(sock: socket.socket) -> bool:
    try:
        sock.settimeout(0.05)
        return sock.recv(1) == b""
    except (TimeoutError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


def test_a_client_holding_200_idle_connections_does_not_block_a_door_scan(kiosk, door):
    url, verify, _, port = kiosk
    token, codes = door
    held = hold(port, 200, url.startswith("https"), verify if isinstance(verify, str) else None)
    try:
        time.sleep(0.5)  # the server has seen every one of them
        seconds, answer = scan(url, verify, token, codes[0])
        assert answer["ok"] is True and seconds < 1.0, (seconds, answer)
        still_open = [s for s in held if not closed_by_server(s)]
        assert len(still_open) <= 32, f"one client holds {len(still_open)} connections"
    finally:
        for sock in held:
            sock.close()


def test_a_request_trickled_a_byte_at_a_time_is_cut_off(kiosk, door):
    url, verify, _, port = kiosk
    sock = connect(port, url.startswith("https"), verify if isinstance(verify, str) else None)
    started = time.monotonic()
    try:
        sock.sendall(b"P")
        while time.monotonic() - started < 25:
            time.sleep(1)
            try:
                sock.sendall(b"O")
            except OSError:
                break
            if closed_by_server(sock):
                break
        assert time.monotonic() - started < 20, "a request head trickled for 20 s was still being read"
    finally:
        sock.close()
    token, codes = door
    assert scan(url, verify, token, codes[1])[1]["ok"] is True


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
