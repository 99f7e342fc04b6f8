"""The coordinator's sync page on the kiosk, the peer API inside the kiosk app, the background
syncer, and the central server's dashboards."""

import io

from kiosk.store.db import transaction
from kiosk.trust import programkeys
from sync.central import create_app as create_central
from sync.syncer import Syncer, status

from support import Kiosk, enrol, wait_until


def test_sync_page_offers_enrolment_before_a_central_server_is_known(coordinator):
    page = coordinator.get("/sync/")
    assert page.status_code == 200
    assert 'action="/sync/enrol"' in page.get_data(as_text=True)


def test_enrolment_from_the_browser_then_sync_now(coordinator, app, event, central_server):
    server = central_server()
    try:
        coordinator.get("/sync/?lang=en")
        wrong = coordinator.post("/sync/enrol", data={"url": server.url, "code": "NOT-A-CODE"}, follow_redirects=True)
        assert "Connecting failed: The enrolment code is wrong" in wrong.get_data(as_text=True)
        assert status(app.config["DATA_DIR"])["central_url"] is None
        code = server.storage().create_enrol_code("door 1")
        right = coordinator.post("/sync/enrol", data={"url": server.url, "code": code}, follow_redirects=True)
        assert "This kiosk is enrolled" in right.get_data(as_text=True)
        assert coordinator.post("/sync/now").status_code == 302
        assert status(app.config["DATA_DIR"])["pending"] == 0
        assert server.storage().change_count() > 0
    finally:
        server.kill()


def test_usb_bundle_download_and_upload_through_the_page(tmp_path, coordinator, app, db, event):
    bundle = coordinator.get("/sync/bundle")
    assert bundle.status_code == 200 and bundle.data[:2] == b"\x1f\x8b"
    other = Kiosk(tmp_path / "other")
    (tmp_path / "b.jsonl.gz").write_bytes(bundle.data)
    from sync.bundle import import_kiosk

    key = programkeys.key_of(db, event["program_id"])
    assert import_kiosk(other.db, tmp_path / "b.jsonl.gz", trust_new=True, program_key=key)["applied"] > 0
    assert other.table("participants") == Kiosk(app.config["DATA_DIR"]).table("participants")
    coordinator.get("/sync/?lang=en")
    again = coordinator.post("/sync/bundle", data={"file": (io.BytesIO(bundle.data), "b.jsonl.gz")},
                             content_type="multipart/form-data", follow_redirects=True)
    assert "Bundle imported: 0 new of" in again.get_data(as_text=True)
    before = db.execute("select count(*) from changes").fetchone()[0]
    cut = coordinator.post("/sync/bundle", data={"file": (io.BytesIO(bundle.data[:-40]), "b.jsonl.gz")},
                           content_type="multipart/form-data", follow_redirects=True)
    assert "refused, nothing changed" in cut.get_data(as_text=True)
    assert db.execute("select count(*) from changes").fetchone()[0] == before


def test_a_bundle_of_a_program_whose_key_is_not_here_is_opened_with_the_key_typed_on_the_page(
        coordinator, db, event):
    bundle = coordinator.get("/sync/bundle").data
    key = programkeys.key_of(db, event["program_id"])
    with transaction(db):
        db.execute("delete from program_keys")  # as on a kiosk that has the program but not its key
    coordinator.get("/sync/?lang=en")

    def upload(**fields):
        return coordinator.post("/sync/bundle", data={"file": (io.BytesIO(bundle), "b.jsonl.gz"), **fields},
                                content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "does not have this program&#39;s key yet" in upload()
    assert "not this program&#39;s key" in upload(program_key=programkeys.format_key(programkeys.new_key()))
    assert programkeys.key_of(db, event["program_id"]) is None
    assert "Bundle imported: 0 new of" in upload(program_key=programkeys.format_key(key).lower())
    assert programkeys.key_of(db, event["program_id"]) == key


def test_conflicts_show_the_person_and_can_be_marked_reviewed(coordinator, db, event):
    person = event["people"][0]
    db.execute("insert into conflicts (entity, entity_id, field, kept_value, kept_hlc, lost_value, lost_hlc,"
               " lost_origin, recorded_at) values ('participants', ?, 'phone', '0811111111', 'b', '0822222222',"
               " 'a', 'dev', '2026-11-21T01:00:00.000Z')", [person["id"]])
    page = coordinator.get("/sync/").get_data(as_text=True)
    assert "นางสาวสมหญิง ใจดี" in page and "0822222222" in page
    conflict_id = db.execute("select id from conflicts").fetchone()[0]
    coordinator.post(f"/sync/conflicts/{conflict_id}")
    assert "0822222222" not in coordinator.get("/sync/").get_data(as_text=True)
    assert db.execute("select resolved_at is not null from conflicts").fetchone()[0] == 1


def test_sync_page_is_for_coordinators_only(staff):
    assert staff.get("/sync/").status_code == 403


def test_sync_now_sends_the_waiting_changes(coordinator, app, event, central_server):
    server = central_server()
    try:
        kiosk = Kiosk(app.config["DATA_DIR"])
        enrol(kiosk, server.url, server.storage())
        waiting = status(app.config["DATA_DIR"])["pending"]
        assert waiting > 0
        assert f"<strong>{waiting}</strong>" in coordinator.get("/sync/").get_data(as_text=True)
        assert coordinator.post("/sync/now").status_code == 302
        page = coordinator.get("/sync/").get_data(as_text=True)
        assert "<strong>0</strong>" in page
        assert status(app.config["DATA_DIR"])["last_success"]["pushed"] == waiting
        assert server.storage().change_count() == waiting
    finally:
        server.kill()


def test_peer_api_inside_the_kiosk_app_answers_in_the_one_error_shape(client):
    response = client.post("/api/sync/hello", json={"protocol": 1})
    assert response.status_code == 401
    assert response.get_json() == {"ok": False, "reason": "unauthenticated", "error": "request is not signed"}


def test_background_syncer_syncs_and_backs_off_while_unreachable(tmp_path, central_server):
    server = central_server()
    kiosk = Kiosk(tmp_path / "door")
    program = kiosk.create_program()
    kiosk.scan_many(program, kiosk.register(program, 5))
    enrol(kiosk, server.url, server.storage())
    syncer = Syncer(kiosk.data_dir, interval=0.2).start()
    try:
        wait_until(lambda: status(kiosk.data_dir)["pending"] == 0, 20, "the first sync")
        assert status(kiosk.data_dir)["pending"] == 0
        server.kill()
        kiosk.scan_many(program, [r[0] for r in kiosk.table("participants")][:1])
        wait_until(lambda: syncer.failures >= 2, 30, "two failed syncs")
        assert syncer.failures >= 2 and syncer.next_wait() >= 0.4   # backing off
        server.start()
        syncer.wake()

        def synced_again():
            syncer.wake()
            # the syncer clears its failure count just after the sync it counts has committed
            return not (status(kiosk.data_dir)["pending"] or syncer.failures)
        wait_until(synced_again, 30, "a sync after the server came back", interval=0.2)
        assert status(kiosk.data_dir)["pending"] == 0 and syncer.failures == 0
    finally:
        syncer.stop()
        server.kill()


def test_central_dashboard_shows_totals_across_venues(tmp_path):
    from kiosk.store import changes
    central = create_central({"CENTRAL_DATA": str(tmp_path / "central")})
    storage = central.extensions["central_storage"]
    door_a, door_b = Kiosk(tmp_path / "a"), Kiosk(tmp_path / "b")
    program = door_a.create_program()
    people = door_a.register(program, 4)
    door_a.scan_many(program, people[:3])
    pid = program["program_id"]
    storage.push(pid, changes.changes_since(door_a.db, pid, {}, -1), source="test", keys=door_a.keys())
    central.config["WTF_CSRF_ENABLED"] = False  # the login and CSRF are tested in test_sync_central_web
    storage.add_user("somchai", "correct horse")
    browser = central.test_client()
    assert browser.get("/").status_code == 302  # no session: to the login page
    browser.post("/login", data={"username": "somchai", "password": "correct horse"})
    page = browser.get("/").get_data(as_text=True)
    assert "อบรมผู้นำชุมชน" in page  # four registered, three came (six person-sessions)
    assert '<td class="num">4</td><td class="num">3</td>' in page
    assert browser.get("/devices").status_code == 200
    enrol_page = browser.post("/enrol", data={"name": "door B"})
    assert b"data:image/png;base64," in enrol_page.data
    door_b.close()


def test_a_failed_enrolment_says_what_to_check_and_never_that_data_will_follow(coordinator, app, tmp_path):
    import http.server
    import threading

    from support import free_port

    coordinator.get("/sync/?lang=en")
    nobody = f"http://127.0.0.1:{free_port()}"
    text = coordinator.post("/sync/enrol", data={"url": nobody, "code": "ABCD-EFGH"},
                            follow_redirects=True).get_data(as_text=True)
    assert f"nothing answered at {nobody}" in text and "sent later" not in text
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)  # 404 pages
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}"
        text = coordinator.post("/sync/enrol", data={"url": url, "code": "ABCD-EFGH"},
                                follow_redirects=True).get_data(as_text=True)
    finally:
        web.shutdown()
    assert "it is not a central server" in text and "without JSON" not in text and "404" not in text
    assert status(app.config["DATA_DIR"])["central_url"] is None


def test_the_usb_file_is_named_with_the_laptop_and_the_date(coordinator, event):
    from kiosk.clock import local_day
    from kiosk.ops.health import laptop_name

    name = coordinator.get("/sync/bundle").headers["Content-Disposition"]
    assert f"kiosk-{laptop_name()}-{local_day().isoformat()}-" in name and ".jsonl.gz" in name
