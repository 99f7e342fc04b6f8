"""A real kiosk server in a subprocess, for browser, fault and benchmark runs.

    with KioskServer(data_dir) as server:
        requests.get(server.url + "/api/ping")
        server.kill()        # SIGKILL: no clean-up of any kind
        server.start()       # same data folder, same port

It runs `kiosk serve` (waitress) on a free 127.0.0.1 port with KIOSK_DATA set, and waits for
/api/ping before returning. The server's output goes to `server.log` in the data folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KioskServer:
    """`kiosk serve` on 127.0.0.1 in a child process; `kill()` is a real SIGKILL."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, threads: int = 8,
                 env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.threads = threads
        self.env = {**os.environ, "KIOSK_DATA": str(self.data_dir), **(env or {})}
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-c", "from kiosk.cli import main; main()", "--data", str(self.data_dir),
                "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(self.threads)]

    def start(self, timeout: float = 30) -> "KioskServer":
        """Starts the server and returns once /api/ping answers."""
        self._log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kiosk server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/api/ping", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"kiosk server did not answer within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL (TerminateProcess on Windows): the process gets no chance to clean up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_log()

    def stop(self) -> None:
        """A polite stop (SIGTERM), then SIGKILL if it lingers."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close_log()

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "KioskServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
