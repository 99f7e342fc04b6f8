"""`kiosk serve`: real waitress on 127.0.0.1, plain and HTTPS with the kiosk's own CA."""

import os
import subprocess
import sys

import pytest
import requests

from support import answers, free_port, wait_until


def start(data_dir, *args):
    port = free_port()
    env = {**os.environ, "KIOSK_DATA": str(data_dir)}
    process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, port


def wait_for(url, **kwargs):
    wait_until(answers("GET", url, **kwargs), 20, f"{url} to answer", interval=0.2)
    return requests.get(url, timeout=2, **kwargs)


def test_serve_prints_the_setup_code_and_addresses(data_dir):
    process, port = start(data_dir)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/api/ping").json() == {"ok": True}
    finally:
        process.kill()
    output = process.communicate()[0]
    assert f"http://127.0.0.1:{port}/" in output
    code = (data_dir / "setup_code").read_text()
    assert code in output


def test_https_serves_with_a_certificate_from_the_kiosk_ca(data_dir):
    process, port = start(data_dir, "--https")
    try:
        wait_until((data_dir / "ca.pem").exists, 20, "the kiosk CA", interval=0.2)
        response = wait_for(f"https://127.0.0.1:{port}/api/ping", verify=str(data_dir / "ca.pem"))
        assert response.json() == {"ok": True}
        login = requests.get(f"https://127.0.0.1:{port}/setup", verify=str(data_dir / "ca.pem"), timeout=5)
        assert login.status_code == 200
        assert requests.get(f"https://127.0.0.1:{port}/ca.pem", verify=str(data_dir / "ca.pem"), timeout=5).text.startswith("-----BEGIN CERTIFICATE")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://127.0.0.1:{port}/api/ping", timeout=5)
    finally:
        process.kill()
        process.wait()
