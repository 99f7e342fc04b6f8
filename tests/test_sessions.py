"""Logins on the server: logout and password change end every copy of a cookie; back-off; private files."""

import os
import stat

import pytest
from click.testing import CliRunner

from kiosk.cli.main import cli
from kiosk.trust import accounts as auth


def _log_in(client, username="chief", password="password123"):
    return client.post("/login", data={"username": username, "password": password})


def _copy_cookie(source, target):
    cookie = source.get_cookie("session")
    target.set_cookie("session", cookie.value)


@pytest.fixture
def chief(db):
    auth.add_user(db, "chief", "coordinator", "password123")


def test_logout_ends_every_copy_of_the_session(app, chief):
    client, thief = app.test_client(), app.test_client()
    assert _log_in(client).status_code == 302
    _copy_cookie(client, thief)
    assert thief.get("/").status_code == 200
    client.post("/logout")
    assert thief.get("/").status_code == 302  # the copied cookie is dead too


def test_a_password_change_ends_every_session_and_the_token(app, db, chief):
    client = app.test_client()
    _log_in(client)
    token = auth.issue_token(db, "chief")
    auth.change_password(db, "chief", "new password 1")
    assert client.get("/").status_code == 302
    assert app.test_client().get("/api/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert _log_in(app.test_client()).status_code == 200  # the old password no longer works
    assert _log_in(app.test_client(), password="new password 1").status_code == 302


def test_a_disabled_account_cannot_log_in_and_its_sessions_end(app, db, chief):
    auth.add_user(db, "door", "staff", "password123")
    client = app.test_client()
    _log_in(client, "door")
    auth.set_disabled(db, "door", True)
    assert client.get("/scan").status_code == 302
    assert _log_in(app.test_client(), "door").status_code == 200
    auth.set_disabled(db, "door", False)
    assert _log_in(app.test_client(), "door").status_code == 302


def test_an_account_changed_here_holds_from_the_next_request_though_its_answers_are_kept(app, db, chief):
    auth.add_user(db, "door", "staff", "password123")
    browser, token = app.test_client(), auth.issue_token(db, "door")
    _log_in(browser, "door")
    scanner = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert scanner.get("/api/sessions", headers=bearer).status_code == 200  # now kept
    assert browser.get("/scan").status_code == 200
    newer = auth.issue_token(db, "door")
    assert scanner.get("/api/sessions", headers=bearer).status_code == 401  # the old token, at once
    assert scanner.get("/api/sessions", headers={"Authorization": f"Bearer {newer}"}).status_code == 200
    auth.set_disabled(db, "door", True)
    assert browser.get("/scan").status_code == 302
    assert scanner.get("/api/sessions", headers={"Authorization": f"Bearer {newer}"}).status_code == 401
    auth.set_disabled(db, "door", False)
    _log_in(browser, "door")
    last = auth.issue_token(db, "door")
    assert browser.get("/scan").status_code == 200
    assert scanner.get("/api/sessions", headers={"Authorization": f"Bearer {last}"}).status_code == 200
    auth.change_password(db, "door", "another password 2")
    assert browser.get("/scan").status_code == 302
    assert scanner.get("/api/sessions", headers={"Authorization": f"Bearer {last}"}).status_code == 401
    _log_in(browser, "door", "another password 2")
    assert browser.get("/scan").status_code == 200
    browser.post("/logout")
    assert browser.get("/scan").status_code == 302


def test_an_account_changed_by_another_process_holds_at_the_next_request(app, db, chief):
    token = auth.issue_token(db, "chief")
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/sessions", headers=bearer).status_code == 200
    db.execute("update users set disabled_at = '2026-12-01T00:00:00.000000Z'")  # the CLI's write, seen from here
    db.conn.commit()
    assert app.test_client().get("/api/sessions", headers=bearer).status_code == 401


def test_a_session_has_an_absolute_lifetime(app, db, chief):
    client = app.test_client()
    _log_in(client)
    db.execute("update login_sessions set created_at = '2020-01-01T00:00:00.000000Z'")
    assert client.get("/").status_code == 302


def test_failed_logins_back_off_per_account_and_per_address(app, chief):
    client = app.test_client()
    for _ in range(auth.LoginThrottle.FREE):
        assert _log_in(client, password="wrong").status_code == 200
    refused = _log_in(client)  # even the right password waits now
    assert refused.status_code == 429
    other_account = _log_in(app.test_client(), username="nobody", password="x")
    assert other_account.status_code == 429  # the same address is held back too


def test_the_throttle_lets_go_after_the_wait_and_forgets_a_success():
    now = [1000.0]
    throttle = auth.LoginThrottle(clock=lambda: now[0])
    for _ in range(throttle.FREE):
        throttle.failed("user:a")
    assert throttle.wait_seconds("user:a") == 1
    now[0] += 1.01
    assert throttle.wait_seconds("user:a") == 0
    throttle.succeeded("user:a")
    throttle.failed("user:a")
    assert throttle.wait_seconds("user:a") == 0


def test_refusing_an_unknown_user_does_the_same_work_as_a_wrong_password(db, chief, monkeypatch):
    calls = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    monkeypatch.setattr(auth, "generate_password_hash", lambda *a: pytest.fail("hashing on a refusal"))
    assert auth.authenticate(db, "nobody", "x") is None
    assert auth.authenticate(db, "chief", "x") is None
    assert len(calls) == 2


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_data_folder_and_its_files_are_private(app, data_dir):
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("kiosk.db", "secret_key"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name


def test_on_windows_the_data_folder_gets_an_access_list_of_its_owner_and_system_only(tmp_path):
    from kiosk.paths import windows_acl
    command = windows_acl(tmp_path / "kiosk", "somchai")
    assert command[:3] == ["icacls", str(tmp_path / "kiosk"), "/inheritance:r"]  # nothing inherited from C:\\
    assert command[3:] == ["/grant:r", "somchai:(OI)(CI)F", "/grant:r", "*S-1-5-18:(OI)(CI)F"]
    assert windows_acl(tmp_path, "") == []  # no user known: left as it is, never locked to SYSTEM alone


def test_the_cli_changes_a_password_and_disables_an_account(data_dir, db, chief):
    runner = CliRunner()
    done = runner.invoke(cli, ["--data", str(data_dir), "user", "password", "chief", "--password", "brand new 9"])
    assert done.exit_code == 0, done.output
    assert auth.authenticate(db, "chief", "brand new 9")
    last = runner.invoke(cli, ["--data", str(data_dir), "user", "disable", "chief"])
    assert last.exit_code == 1 and "[last_coordinator]" in last.output  # nobody could set accounts up
    auth.add_user(db, "deputy", "coordinator", "password123")
    assert runner.invoke(cli, ["--data", str(data_dir), "user", "disable", "chief"]).exit_code == 0
    assert auth.authenticate(db, "chief", "brand new 9") is None
    missing = runner.invoke(cli, ["--data", str(data_dir), "user", "disable", "nobody"])
    assert missing.exit_code == 1 and "[unknown_user]" in missing.output


def test_the_central_server_backs_off_failed_logins_too(tmp_path):
    from sync.central import create_app as create_central

    central = create_central({"CENTRAL_DATA": str(tmp_path / "central"), "WTF_CSRF_ENABLED": False})
    central.extensions["central_storage"].add_user("somchai", "correct horse")
    client = central.test_client()
    form = {"username": "somchai", "password": "wrong"}
    for _ in range(auth.LoginThrottle.FREE):
        assert client.post("/login", data=form).status_code == 401
    assert client.post("/login", data={**form, "password": "correct horse"}).status_code == 429


def test_central_logout_ends_every_copy_and_a_disabled_coordinator_is_shut_out(tmp_path):
    from sync.central import create_app as create_central

    central = create_central({"CENTRAL_DATA": str(tmp_path / "central"), "WTF_CSRF_ENABLED": False})
    storage = central.extensions["central_storage"]
    storage.add_user("somchai", "correct horse")
    client, thief = central.test_client(), central.test_client()
    assert client.post("/login", data={"username": "somchai", "password": "correct horse"}).status_code == 302
    thief.set_cookie("kiosk_central_session", client.get_cookie("kiosk_central_session").value)
    assert thief.get("/devices").status_code == 200
    client.post("/logout")
    assert thief.get("/devices").status_code == 302
    client.post("/login", data={"username": "somchai", "password": "correct horse"})
    storage.set_disabled("somchai", True)
    assert client.get("/devices").status_code == 302
    assert storage.authenticate("somchai", "correct horse") is None
    storage.set_disabled("somchai", False)
    storage.change_password("somchai", "a new horse")
    assert storage.authenticate("somchai", "a new horse") and not storage.authenticate("somchai", "correct horse")


def test_a_session_is_written_when_it_was_read_or_changed_and_not_otherwise(app):
    scanner = app.test_client()
    ping = scanner.get("/api/ping")  # nobody read the session: no cookie, no Vary
    assert ping.status_code == 200
    assert "Set-Cookie" not in ping.headers and "Vary" not in ping.headers
    browser = app.test_client()
    browser.set_cookie("lang", "en")  # a cookie, so the language is read from the session (empty)
    refused = browser.get("/api/participants/search?q=x")
    assert refused.status_code == 401
    assert "Cookie" in refused.headers.get("Vary", "") and "Set-Cookie" not in refused.headers
    chosen = scanner.get("/api/participants/search?q=x&lang=en")  # the session changes: it is written
    assert chosen.status_code == 401
    assert "session=" in chosen.headers.get("Set-Cookie", "") and "Cookie" in chosen.headers.get("Vary", "")
