"""The central server's coordinator pages: a login with a session, CSRF on every form, the
one-time set-up code for the first account, and `kiosk-central user add`."""

import re

import pytest
from click.testing import CliRunner

from sync.central import create_app
from sync.central.cli import main as central_cli
from sync.protocol import PROTOCOL


@pytest.fixture
def app(tmp_path):
    return create_app({"CENTRAL_DATA": str(tmp_path / "central")})


@pytest.fixture
def storage(app):
    return app.extensions["central_storage"]


def csrf_token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_in(client, username="somchai", password="correct horse"):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.mark.parametrize("path", ["/", "/devices", "/enrol"])
def test_central_pages_send_a_stranger_to_the_login_page(app, storage, path):
    storage.add_user("somchai", "correct horse")
    response = app.test_client().get(path)
    assert response.status_code == 302 and response.location == f"/login?next={path}"


def test_a_strangers_form_posts_do_nothing_even_with_a_csrf_token(app, storage):
    storage.add_user("somchai", "correct horse")
    device = storage.enrol(storage.create_enrol_code(), "d" * 36)["device_id"]
    client = app.test_client()
    assert client.post("/enrol", data={"name": "x"}).status_code == 400          # no token
    token = csrf_token(client, "/login")                                         # a stranger's own token
    for path in ("/enrol", f"/devices/{device}/revoke"):
        response = client.post(path, data={"name": "x", "csrf_token": token})
        assert response.status_code == 302 and response.location.startswith("/login")
    assert storage.lookup(device)[1] is False


def test_pages_answer_after_log_in_and_not_after_log_out(app, storage):
    storage.add_user("somchai", "correct horse")
    client = app.test_client()
    response = log_in(client)
    assert response.status_code == 302 and response.location == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and cookie.startswith("kiosk_central_session=")
    assert client.get("/devices").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/devices")})
    assert client.get("/devices").status_code == 302


def test_login_goes_back_to_the_page_asked_for_but_never_to_another_site(app, storage):
    storage.add_user("somchai", "correct horse")
    client = app.test_client()
    token = csrf_token(client, "/login")
    form = {"username": "somchai", "password": "correct horse", "csrf_token": token}
    assert client.post("/login?next=/devices", data=form).location == "/devices"
    client = app.test_client()
    form["csrf_token"] = csrf_token(client, "/login")
    assert client.post("/login?next=//evil.example/x", data=form).location == "/"


@pytest.mark.parametrize("username, password", [("somchai", "wrong password"), ("nobody", "correct horse"),
                                                ("somchai", "")])
def test_a_wrong_password_is_refused(app, storage, username, password):
    storage.add_user("somchai", "correct horse")
    client = app.test_client()
    client.set_cookie("lang", "en")
    response = log_in(client, username, password)
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_forms_need_the_csrf_token(app, storage):
    storage.add_user("somchai", "correct horse")
    client = app.test_client()
    no_token = client.post("/login", data={"username": "somchai", "password": "correct horse"})
    assert no_token.status_code == 400 and client.get("/").status_code == 302   # not logged in
    log_in(client)
    assert client.post("/enrol", data={"name": "door B"}).status_code == 400
    assert client.post("/enrol", data={"name": "door B", "csrf_token": "forged"}).status_code == 400
    code = storage.create_enrol_code()
    device = storage.enrol(code, "d" * 36)["device_id"]
    assert client.post(f"/devices/{device}/revoke").status_code == 400
    assert storage.lookup(device) == (storage.lookup(device)[0], False)   # not revoked
    good = client.post("/enrol", data={"name": "door B", "csrf_token": csrf_token(client, "/enrol")})
    assert good.status_code == 200 and b"data:image/png;base64," in good.data


def test_the_signed_device_api_needs_no_csrf_token(app, storage):
    code = storage.create_enrol_code()
    response = app.test_client().post("/api/sync/enrol", json={"protocol": PROTOCOL, "code": code})
    assert response.status_code == 200 and response.json["ok"] is True


def test_a_kiosk_on_protocol_1_is_told_to_update(app, storage):
    response = app.test_client().post("/api/sync/enrol", json={"protocol": 1, "code": storage.create_enrol_code()})
    assert (response.status_code, response.json["reason"]) == (400, "protocol_version")
    assert "update this kiosk" in response.json["error"]


def test_the_set_up_code_creates_the_first_coordinator_once(app, storage):
    client = app.test_client()
    assert client.get("/").location == "/setup"
    assert client.get("/login").location == "/setup"
    code = storage.setup_code()
    token = csrf_token(client, "/setup")
    form = {"code": "WRON-GCOD-E123", "username": "somchai", "password": "correct horse", "csrf_token": token}
    wrong = client.post("/setup", data=form)
    assert wrong.status_code == 400 and not storage.has_users()
    weak = client.post("/setup", data={**form, "code": code.lower(), "password": "short"})
    assert weak.status_code == 400 and not storage.has_users()   # a typo does not spend the code
    done = client.post("/setup", data={**form, "code": code.lower()})
    assert done.status_code == 302 and done.location == "/"
    assert client.get("/devices").status_code == 200               # logged in as the new coordinator
    other = app.test_client()
    assert other.get("/setup").location == "/login"
    again = other.post("/setup", data={**form, "code": code, "username": "intruder",
                                       "csrf_token": csrf_token(other, "/login")})
    assert again.status_code == 302 and again.location == "/login"
    with pytest.raises(Exception, match="already exists"):
        storage.create_first_user(code, "intruder", "correct horse")
    assert storage.authenticate("intruder", "correct horse") is None
    assert storage.setup_code() is None


def test_a_new_set_up_code_replaces_the_old_one(storage):
    old, new = storage.setup_code(), storage.setup_code()
    with pytest.raises(Exception, match="wrong set-up code"):
        storage.create_first_user(old, "somchai", "correct horse")
    storage.create_first_user(new, "somchai", "correct horse")
    assert storage.authenticate("somchai", "correct horse")["username"] == "somchai"


def test_user_add_asks_for_the_password_and_the_account_logs_in(tmp_path):
    data = str(tmp_path / "central")
    runner = CliRunner()
    result = runner.invoke(central_cli, ["--data", data, "user", "add", "somchai"],
                           input="correct horse\ncorrect horse\n")
    assert result.exit_code == 0, result.output
    assert "correct horse" not in result.output
    mismatch = runner.invoke(central_cli, ["--data", data, "user", "add", "somying"], input="aaaaaaaa\nbbbbbbbb\n")
    assert mismatch.exit_code != 0
    duplicate = runner.invoke(central_cli, ["--data", data, "user", "add", "somchai"],
                              input="another one\nanother one\n")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    app = create_app({"CENTRAL_DATA": data})
    client = app.test_client()
    assert log_in(client).status_code == 302 and client.get("/").status_code == 200
    assert app.extensions["central_storage"].authenticate("somying", "aaaaaaaa") is None


def test_serve_prints_a_set_up_code_on_first_start_only(central_server):
    server = central_server()
    server.kill()
    printed = re.search(r"one-time code (\S+)", server.log_path.read_text()).group(1)
    storage = server.storage()
    storage.create_first_user(printed, "somchai", "correct horse")
    server.log_path.write_text("")
    server.start()
    server.kill()
    assert "one-time code" not in server.log_path.read_text()


@pytest.mark.parametrize("lang", ["xx", "", "th_TH", "../en", "en"])
def test_an_unknown_language_is_ignored_not_an_error(app, storage, lang):
    storage.add_user("somchai", "correct horse")
    response = app.test_client().get("/login", query_string={"lang": lang})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert ("Coordinator log in" in page) == (lang == "en")


@pytest.mark.parametrize("path", ["/login", "/api/v2/hello", "/no-such-page"])
def test_central_answers_carry_the_kiosks_security_headers(app, storage, path):
    from kiosk.webkit.security import CSP

    storage.add_user("somchai", "correct horse")
    response = app.test_client().get(path)
    assert response.headers["Content-Security-Policy"] == CSP and "frame-ancestors 'none'" in CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]


def test_central_pages_have_no_inline_style_or_script(app, storage):
    storage.add_user("somchai", "correct horse")
    page = app.test_client().get("/login").get_data(as_text=True)
    assert "<style" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert app.test_client().get("/static/css/central.css").status_code == 200


def test_a_huge_central_form_is_refused_413(app, storage):
    storage.add_user("somchai", "correct horse")
    response = app.test_client().post("/login", data={"username": "somchai", "password": "x" * (1024 * 1024)})
    assert response.status_code == 413


def test_central_serves_https_with_its_own_local_ca(tmp_path):
    import subprocess
    import sys

    import requests

    from support import free_port, wait_until

    port, folder = free_port(), tmp_path / "central"
    log = (tmp_path / "central.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "sync.central", "--data", str(folder), "serve", "--host",
                                "127.0.0.1", "--port", str(port), "--https"], stdout=log, stderr=log)
    url = f"https://127.0.0.1:{port}"

    def answers():
        try:
            # a list: a 4xx Response is falsy, and wait_until waits for something true
            return [requests.post(url + "/api/sync/hello", json={}, verify=str(folder / "ca.pem"), timeout=2)]
        except (requests.ConnectionError, OSError):
            return None

    try:
        [answer] = wait_until(answers, 30, "central did not answer over HTTPS")
        assert answer.json()["reason"] == "unauthenticated"  # the signed API, reached over TLS
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/login", timeout=5)  # not a publicly trusted certificate: the CA file is needed
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/login", timeout=5)  # no plain HTTP on that port
        _a_kiosk_trusts_it_with_the_ca_given_at_enrolment(tmp_path, folder, url)
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _a_kiosk_trusts_it_with_the_ca_given_at_enrolment(tmp_path, folder, url):
    from sync.central.storage import Storage
    from sync.client import enrol, sync_once
    from sync.protocol import SyncError

    from support import Kiosk

    kiosk = Kiosk(tmp_path / "door")
    kiosk.register(kiosk.create_program(), 2)
    code = Storage(f"sqlite:///{folder / 'central.db'}").create_enrol_code("door")
    with pytest.raises(SyncError) as untrusted:
        enrol(kiosk.data_dir, url, code)  # no CA given: the certificate is refused, nothing is sent
    assert untrusted.value.reason == "unreachable"
    with pytest.raises(SyncError) as not_a_ca:
        enrol(kiosk.data_dir, url, code, ca=str(tmp_path / "central.log"))
    assert not_a_ca.value.reason == "bad_ca"
    enrol(kiosk.data_dir, url, code, ca=str(folder / "ca.pem"))
    assert sync_once(kiosk.data_dir)["pushed"] > 0  # later syncs check the server with the kept CA
    kiosk.close()


def test_central_on_sqlite_writes_through_to_the_disk_before_it_acknowledges(storage):
    """synchronous=FULL: a push acknowledged, a bundle imported or an edit saved on central is on
    the disk, not only in the WAL's page cache, when the answer goes out."""
    from sqlalchemy import text
    with storage.engine.connect() as conn:
        assert conn.execute(text("pragma synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
