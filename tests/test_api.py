"""The JSON API of the door, through the Flask client: shapes, auth, bad input."""

from datetime import timedelta

import pytest

from kiosk.badges.codes import make_code
from kiosk.badges.issuing import reissue_badge
from kiosk.clock import iso, local_day, now_utc
from kiosk.program import events
from kiosk.trust import accounts as auth
from kiosk.trust.programkeys import badge_key

from support import PEOPLE, bangkok

ERROR_KEYS = {"ok", "reason", "error"}


@pytest.fixture
def event(make_event):
    """Cohort 1 met yesterday and meets today, so its first day's times are always in the past
    (the API refuses an `at` ahead of its clock); three people with badges."""
    return make_event(starts_on=local_day() - timedelta(days=1),
                      people=[(*person[:5], "0812345678") for person in PEOPLE[:3]])


@pytest.fixture
def day1(event):
    return event["sessions"][0]


@pytest.fixture
def nine(day1):
    return iso(bangkok(day1["day"], "09:00"))


@pytest.fixture
def token(db, client):
    auth.add_user(db, "scanner", "staff", "password123")
    return auth.issue_token(db, "scanner")


def state(db):
    """Everything a request could change."""
    return tuple(db.execute(f"select count(*) from {t}").fetchone()[0]
                 for t in ("scans", "attendance", "changes", "participants", "badges"))


def assert_error(response, status, reason):
    body = response.get_json()
    assert response.status_code == status, body
    assert body["ok"] is False and body["reason"] == reason
    assert ERROR_KEYS <= set(body) and isinstance(body["error"], str) and body["error"]
    return body


def test_ping_needs_no_login(client):
    assert client.get("/api/ping").get_json() == {"ok": True}


def test_check_in_with_a_staff_session(staff, db, event, nine):
    person = event["people"][0]
    response = staff.post("/api/checkins", json={"code": person["code"], "at": nine, "nonce": "a"})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["ok"] is True and body["status"] == "checked_in"
    assert body["participant"]["name"] == "นางสาวสมหญิง ใจดี"
    assert body["participant"]["area"] == "เขตดินแดง" and body["participant"]["role"] == "participant"
    assert body["session"]["id"] == event["sessions"][0]["id"] and body["session"]["cohort_number"] == 1
    assert body["first_checked_in_at"] == nine and body["first_checked_in_time"] == "09:00"
    for secret in ("nid_hash", "nid_last4", "phone"):
        assert secret not in body["participant"]
    operator, = db.execute("select operator from scans").fetchone()
    assert operator == "door"


def test_second_scan_is_ok_with_the_first_time(staff, event, nine, day1):
    code = event["people"][0]["code"]
    staff.post("/api/checkins", json={"code": code, "at": nine})
    later = iso(bangkok(day1["day"], "10:15"))
    body = staff.post("/api/checkins", json={"code": code, "at": later}).get_json()
    assert (body["ok"], body["status"], body["first_checked_in_at"]) == (True, "already_checked_in", nine)


def test_bearer_token_works_and_names_the_operator(client, db, token, event, nine):
    response = client.post("/api/checkins", json={"code": event["people"][1]["code"], "at": nine},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert db.execute("select operator from scans").fetchone()[0] == "scanner"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer kt_wrong"}, {"Authorization": "Basic eDp5"},
                                     {"Authorization": "Bearer "}])
def test_missing_or_wrong_token_is_unauthenticated_and_changes_nothing(client, db, event, nine, headers):
    before = state(db)
    response = client.post("/api/checkins", json={"code": event["people"][0]["code"], "at": nine}, headers=headers)
    assert_error(response, 401, "unauthenticated")
    assert state(db) == before
    for url in ("/api/sessions", f"/api/sessions/{event['sessions'][0]['id']}/attendance",
                "/api/participants/search?q=สม"):
        assert_error(client.get(url, headers=headers), 401, "unauthenticated")


def test_same_nonce_is_replayed_not_stored_again(staff, db, event, nine):
    body = {"code": event["people"][0]["code"], "at": nine, "nonce": "n-42"}
    first = staff.post("/api/checkins", json=body).get_json()
    before = state(db)
    again = staff.post("/api/checkins", json=body).get_json()
    assert state(db) == before
    assert again["status"] == "checked_in" and again["scan_id"] == first["scan_id"] and again["replayed"]


@pytest.mark.parametrize("code, status, reason", [
    ("", 422, "invalid_code"),
    (None, 422, "invalid_code"),
    ("x' OR '1'='1'; DROP TABLE participants; --", 422, "invalid_code"),
    ("🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉", 422, "invalid_code"),
    ("แฟกหกดเ้่าสวแฟกหกดเ้่", 422, "invalid_code"),
    ("\u0000\u0001\u00ff\ufffe", 422, "invalid_code"),
    (["AAAA"], 422, "invalid_code"),
    ({"$ne": 1}, 422, "invalid_code"),
    pytest.param(make_code("another-program", b"x" * 32), 422, "wrong_program", id="another-program"),
])
def test_bad_codes_get_their_reason_and_are_stored_as_failed_attempts(staff, db, event, nine, code, status, reason):
    response = staff.post("/api/checkins", json={"code": code, "at": nine})
    assert_error(response, status, reason)
    assert db.execute("select result from scans").fetchall() == [(reason,)]
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0
    assert db.execute("select count(*) from participants").fetchone()[0] == 3


@pytest.mark.parametrize("field", ["code", "session", "nonce", "participant_id"])
def test_a_lone_surrogate_is_refused_as_bad_text_and_nothing_is_stored(staff, db, event, nine, field):
    """JSON can spell half a UTF-16 pair ("\\ud800"), which no database column can hold."""
    body = {"code": event["people"][0]["code"], "at": nine, field: "AB\ud800"}
    if field == "participant_id":
        del body["code"]
    before = state(db)
    response = assert_error(staff.post("/api/checkins", json=body), 400, "bad_request")
    assert field in response["error"]
    assert state(db) == before


def test_thai_code_says_the_keyboard_is_thai(staff, event, nine):
    body = assert_error(staff.post("/api/checkins?lang=en", json={"code": "ฟหกด", "at": nine}), 422, "invalid_code")
    assert body["detail"] == "thai_layout" and "Thai" in body["error"]


def test_forged_code_is_told_apart_from_another_programs(staff, event, nine):
    code = event["people"][0]["code"]
    forged = code[:-2] + ("AA" if code[-2:] != "AA" else "BB")
    body = assert_error(staff.post("/api/checkins", json={"code": forged, "at": nine}), 422, "invalid_code")
    assert body["detail"] == "signature"


def test_domain_reasons_through_the_api(staff, db, event, nine, day1):
    person = event["people"][0]
    reissue_badge(db, person["id"])
    assert_error(staff.post("/api/checkins", json={"code": person["code"], "at": nine}), 410, "revoked_badge")
    key = badge_key(db, event["program_id"])
    unknown = make_code(event["program_id"], key)
    assert_error(staff.post("/api/checkins", json={"code": unknown, "at": nine}), 404, "unknown_participant")
    night = iso(bangkok(day1["day"], "22:00"))
    body = assert_error(staff.post("/api/checkins", json={"code": event["people"][1]["code"], "at": night}),
                        409, "no_open_session")
    assert body["participant"]["name"] == "นายสมชาย ศรีสุข"


@pytest.mark.parametrize("ahead", [timedelta(minutes=5), timedelta(hours=20), timedelta(days=1)])
def test_a_check_in_at_a_time_ahead_of_the_clock_is_refused_and_not_stored(staff, db, open_event, ahead):
    """Tomorrow's session cannot be filled today by sending its time."""
    before = state(db)
    for person in open_event["people"][:2]:
        for queued in (False, True):
            body = {"code": person["code"], "at": iso(now_utc() + ahead), "queued": queued}
            assert_error(staff.post("/api/checkins", json=body), 400, "bad_time")
    assert state(db) == before


def test_a_check_in_a_minute_ahead_is_forgiven_as_clock_skew(staff, db, open_event):
    body = {"code": open_event["people"][0]["code"], "at": iso(now_utc() + timedelta(minutes=1))}
    answer = staff.post("/api/checkins", json=body).get_json()
    assert answer["status"] == "checked_in"


def test_valid_code_for_a_closed_chosen_session_changes_nothing_but_the_log(staff, db, event, nine):
    day2 = event["sessions"][1]
    before = state(db)
    body = {"code": event["people"][0]["code"], "session": day2["id"], "at": nine}
    assert_error(staff.post("/api/checkins", json=body), 409, "no_open_session")
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0
    scans, attendance, changes, people, badges = state(db)
    assert (scans, attendance, changes, people, badges) == (before[0] + 1, before[1], before[2] + 1, *before[3:])


def test_participant_id_override_checks_in_with_no_code(staff, db, event, nine):
    person = event["people"][2]
    body = staff.post("/api/checkins", json={"participant_id": person["id"], "at": nine}).get_json()
    assert body["status"] == "checked_in" and body["participant"]["role"] == "speaker"
    assert db.execute("select code from scans").fetchone()[0] is None


@pytest.mark.parametrize("payload, content_type, status, reason", [
    (b"", "application/json", 400, "bad_json"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "application/json", 400, "bad_json"),
    (b"[1, 2, 3]", "application/json", 400, "bad_json"),
    (b'"ABCD"', "application/json", 400, "bad_json"),
    (b"null", "application/json", 400, "bad_json"),
    (b"{not json", "application/json", 400, "bad_json"),
    (b'{"code": "ABCD"}', "text/plain", 400, "bad_json"),
    (b"code=ABCD", "application/x-www-form-urlencoded", 400, "bad_json"),
    (b'{"code": "' + b"A" * (10 * 1024 * 1024) + b'"}', "application/json", 413, "payload_too_large"),
    (b'{"code": "ABCD", "nonce": 5}', "application/json", 400, "bad_request"),
    (b'{"code": "ABCD", "session": ["x"]}', "application/json", 400, "bad_request"),
    (b'{"code": "ABCD", "at": "yesterday"}', "application/json", 400, "bad_request"),
    (b'{"code": "ABCD", "direction": "sideways"}', "application/json", 400, "bad_request"),
    (b'{"code": "ABCD", "participant_id": "p"}', "application/json", 400, "bad_request"),
    (b'{"code": "ABCD", "nonce": "' + b"n" * 500 + b'"}', "application/json", 400, "bad_request"),
])
def test_bodies_that_are_not_scan_attempts_change_nothing(staff, db, event, payload, content_type, status, reason):
    before = state(db)
    assert_error(staff.post("/api/checkins", data=payload, content_type=content_type), status, reason)
    assert state(db) == before


def test_sessions_today_with_counts(staff, open_event):
    event = open_event
    staff.post("/api/checkins", json={"code": event["people"][0]["code"]})
    body = staff.get("/api/sessions").get_json()
    [session] = [s for s in body["sessions"] if s["id"] == event["session_id"]]
    assert session["open"] is True and session["checked_in"] == 1 and session["expected"] == 4


def test_session_attendance_by_role(staff, open_event):
    event = open_event
    for person in event["people"][:3]:
        assert staff.post("/api/checkins", json={"code": person["code"]}).status_code == 200
    body = staff.get(f"/api/sessions/{event['session_id']}/attendance").get_json()
    assert (body["checked_in"], body["expected"]) == (3, 4)
    assert body["by_role"] == {"participant": {"checked_in": 2, "expected": 2},
                               "speaker": {"checked_in": 1, "expected": 1},
                               "staff": {"checked_in": 0, "expected": 1}}
    assert_error(staff.get("/api/sessions/nope/attendance"), 404, "not_found")


@pytest.mark.parametrize("query, names", [
    ("สมหญิง", ["นางสาวสมหญิง ใจดี"]),
    ("ใจ", ["นางสาวสมหญิง ใจดี"]),
    ("smith", ["Mr. John Smith"]),
    ("0811110003", ["นางลำดวน ผู้ใหญ่ยิ่ง"]),
    ("' or 1=1 --", []),
    ("ก", []),
])
@pytest.mark.usefixtures("open_event")
def test_search_by_any_part_of_a_name_or_phone(staff, query, names):
    body = staff.get("/api/participants/search", query_string={"q": query}).get_json()
    assert [p["name"] for p in body["participants"]] == names


@pytest.mark.parametrize("query, names", [
    ("0003", ["นางลำดวน ผู้ใหญ่ยิ่ง"]),
    ("811110003", []),
    ("08111", []),
    ("1110003", []),
    ("1111", []),
])
@pytest.mark.usefixtures("open_event")
def test_a_phone_is_found_only_by_the_whole_number_or_its_last_four_digits(staff, query, names):
    body = staff.get("/api/participants/search", query_string={"q": query}).get_json()
    assert [p["name"] for p in body["participants"]] == names


@pytest.mark.parametrize("query", ["%%", "__", "_%", "ส%", "\\%"])
@pytest.mark.usefixtures("open_event")
def test_like_wildcards_in_a_search_are_plain_characters(staff, query):
    body = staff.get("/api/participants/search", query_string={"q": query}).get_json()
    assert body["participants"] == []


def test_reprint_revokes_the_old_badge_and_serves_the_new_png(staff, db, event, nine):
    person = event["people"][0]
    body = staff.post(f"/api/participants/{person['id']}/badge", json={}).get_json()
    assert body["ok"] and body["code"] != person["code"]
    png = staff.get(body["badge_url"])
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert_error(staff.post("/api/checkins", json={"code": person["code"], "at": nine}), 410, "revoked_badge")
    ok = staff.post("/api/checkins", json={"code": body["code"], "at": nine}).get_json()
    assert ok["status"] == "checked_in"
    assert_error(staff.post("/api/participants/nobody/badge", json={}), 404, "unknown_participant")


def test_badge_png_reads_back_as_the_new_code(staff, db, event):
    import io

    import zxingcpp
    from PIL import Image

    person = event["people"][1]
    body = staff.post(f"/api/participants/{person['id']}/badge", json={}).get_json()
    image = Image.open(io.BytesIO(staff.get(body["badge_url"]).data))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [body["code"]]


def test_badge_png_needs_login(client, event):
    assert client.get(f"/scan/badges/{event['people'][0]['id']}.png").status_code == 302


def test_every_error_has_the_one_shape(staff, event):
    """A sweep of endpoints: whatever goes wrong, the body is {"ok": false, "reason", "error"}."""
    responses = [
        staff.get("/api/nothing-here"),
        staff.delete("/api/checkins"),
        staff.post("/api/checkins", data=b"\xff", content_type="application/json"),
        staff.get("/api/sessions/x/attendance"),
    ]
    for response in responses:
        body = response.get_json()
        assert response.status_code >= 400 and body["ok"] is False and ERROR_KEYS <= set(body), body


def test_chosen_session_of_another_cohort_is_wrong_cohort(staff, db, event, nine):
    other = events.add_cohort(db, event["program_id"], 3, events.parse_day(event["sessions"][0]["day"]), 1)
    session = events.sessions(db, other)[0]
    body = {"code": event["people"][0]["code"], "session": session["id"], "at": nine}
    assert_error(staff.post("/api/checkins", json=body), 409, "wrong_cohort")


def test_role_is_named_in_the_users_language(staff, event, nine):
    code = event["people"][2]["code"]
    thai = staff.post("/api/checkins?lang=th", json={"code": code, "at": nine}).get_json()
    english = staff.post("/api/checkins?lang=en", json={"code": code, "at": nine}).get_json()
    assert (thai["participant"]["role_name"], english["participant"]["role_name"]) == ("วิทยากร", "Speaker")


@pytest.mark.parametrize("content_type, payload", [
    (None, b""),
    ("application/x-www-form-urlencoded", b"x=1"),
    ("multipart/form-data; boundary=b", b"--b--\r\n"),
    ("text/plain", b"{}"),
    ("application/json", b"[]"),
])
def test_a_cookie_write_another_page_could_send_is_refused_and_the_badge_kept(staff, db, event, nine,
                                                                              content_type, payload):
    """A same-site page can post a form with the staff cookie; it must not revoke a badge."""
    person = event["people"][0]
    headers = {"Content-Type": content_type} if content_type else {}
    before = state(db)
    response = staff.post(f"/api/participants/{person['id']}/badge", data=payload, headers=headers)
    assert_error(response, 400, "bad_json")
    assert state(db) == before
    assert staff.post("/api/checkins", json={"code": person["code"], "at": nine}).get_json()["ok"] is True


def test_a_bearer_token_or_the_csrf_header_reissues_a_badge_without_a_json_body(client, staff, db, event, token):
    import re

    first, second = event["people"][:2]
    answer = client.post(f"/api/participants/{first['id']}/badge", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.get_json()["code"] != first["code"]
    page = staff.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = staff.post(f"/api/participants/{second['id']}/badge", headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200 and answer.get_json()["code"] != second["code"]
    wrong = staff.post(f"/api/participants/{second['id']}/badge", headers={"X-CSRFToken": "forged"})
    assert_error(wrong, 400, "bad_json")
