"""The check-in service: every reason code, idempotent nonces, stored attempts, racing devices."""

import threading
from datetime import date

import pytest

from kiosk.badges.codes import make_code
from kiosk.badges.issuing import reissue_badge
from kiosk.door.checkin import CheckinError, check_in
from kiosk.door.screen import find_people
from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.store import changes
from kiosk.store.db import connect, device_id, open_data_dir
from kiosk.trust.programkeys import badge_key

from support import bangkok


@pytest.fixture
def day1(event):
    return event["sessions"][0]


def at(session, hhmm="09:00"):
    return bangkok(session["day"], hhmm)


def scans(db):
    return list(db.query("select * from scans order by rowid"))


def attendance(db):
    return list(db.query("select * from attendance"))


def count_changes(db):
    return db.execute("select count(*) from changes").fetchone()[0]


def expect_reason(reason, call, *args, **kwargs):
    with pytest.raises(CheckinError) as caught:
        call(*args, **kwargs)
    assert caught.value.reason == reason, str(caught.value)
    return caught.value


def test_first_scan_checks_in_and_stores_the_scan(db, event, day1):
    person = event["people"][0]
    result = check_in(db, person["code"], at=at(day1), device="tablet-1", operator="door", nonce="n-1")
    assert result.status == "checked_in"
    assert result.participant["id"] == person["id"]
    assert result.session["id"] == day1["id"]
    assert result.first_checked_in_at == result.at
    [scan] = scans(db)
    assert (scan["result"], scan["participant_id"], scan["session_id"]) == ("checked_in", person["id"], day1["id"])
    assert (scan["device_id"], scan["operator"], scan["nonce"], scan["code"]) == ("tablet-1", "door", "n-1", person["code"])
    assert scan["at"] == result.at
    [row] = attendance(db)
    assert (row["participant_id"], row["session_id"], row["first_scan_id"]) == (person["id"], day1["id"], scan["id"])


def test_a_scan_is_a_logged_change_for_sync(db, event, day1):
    before = count_changes(db)
    check_in(db, event["people"][0]["code"], at=at(day1))
    assert count_changes(db) == before + 1
    entity, = db.execute("select entity from changes order by rowid desc limit 1").fetchone()
    assert entity == "scans"


def test_second_scan_same_day_is_already_checked_in_with_the_first_time(db, event, day1):
    code = event["people"][0]["code"]
    first = check_in(db, code, at=at(day1, "08:01"))
    again = check_in(db, code, at=at(day1, "08:30"), device="other-laptop")
    assert again.status == "already_checked_in"
    assert again.first_checked_in_at == first.at
    assert len(scans(db)) == 2
    assert len(attendance(db)) == 1


def test_next_day_is_a_new_attendance(db, event):
    code = event["people"][0]["code"]
    day1, day2 = event["sessions"]
    assert check_in(db, code, at=at(day1)).status == "checked_in"
    assert check_in(db, code, at=at(day2)).session["id"] == day2["id"]
    assert len(attendance(db)) == 2


@pytest.mark.parametrize("raw, detail", [
    ("", "format"),
    ("HELLO", "format"),
    ("' OR 1=1; DROP TABLE scans; --", "format"),
    ("🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂", "format"),
    ("ฟหกดเ้่าสวฟหกดเ้่าสวงง", "thai_layout"),
    ("\x00\xff\x01binary", "format"),
    ("A" * 10_000, "format"),
])
def test_garbage_is_invalid_code_and_stored_as_a_failed_attempt(db, event, day1, raw, detail):
    error = expect_reason("invalid_code", check_in, db, raw, at=at(day1), nonce="x")
    assert error.detail == detail
    [scan] = scans(db)
    assert scan["result"] == "invalid_code"
    assert scan["participant_id"] is None and scan["session_id"] is None
    assert scan["program_id"] == event["program_id"]  # the program of the session open at that moment
    assert scan["code"] is None or len(scan["code"]) <= 64
    assert attendance(db) == []
    assert db.execute("select count(*) from participants").fetchone()[0] == 3


def test_non_text_code_is_invalid(db, event, day1):
    expect_reason("invalid_code", check_in, db, 12345, at=at(day1))
    assert scans(db)[0]["code"] is None


def test_forged_signature_is_invalid_code_not_wrong_program(db, event, day1):
    code = event["people"][0]["code"]
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    error = expect_reason("invalid_code", check_in, db, forged, at=at(day1))
    assert error.detail == "signature"
    assert scans(db)[0]["program_id"] == event["program_id"]  # the tag says whose badge it pretends to be


def test_badge_of_another_program_is_wrong_program(db, event, day1):
    stranger = make_code("a-program-this-kiosk-does-not-serve", b"k" * 32)
    expect_reason("wrong_program", check_in, db, stranger, at=at(day1))
    assert scans(db)[0]["result"] == "wrong_program"


def test_chosen_session_of_another_program_is_wrong_program(db, event, day1):
    other = events.create_program(db, "โครงการอื่น")
    cohort = events.add_cohort(db, other, 1, date.fromisoformat(day1["day"]), 1)
    session = events.sessions(db, cohort)[0]
    expect_reason("wrong_program", check_in, db, event["people"][0]["code"], session_id=session["id"], at=at(day1))


def test_genuine_code_nobody_holds_is_unknown_participant(db, event, day1):
    key = badge_key(db, event["program_id"])
    lost_in_sync = make_code(event["program_id"], key)
    expect_reason("unknown_participant", check_in, db, lost_in_sync, at=at(day1))
    assert scans(db)[0]["program_id"] == event["program_id"]


def test_replaced_badge_is_revoked_and_the_new_one_works(db, event, day1):
    person = event["people"][0]
    new_code = reissue_badge(db, person["id"])
    error = expect_reason("revoked_badge", check_in, db, person["code"], at=at(day1))
    assert error.participant["id"] == person["id"]
    assert check_in(db, new_code, at=at(day1)).status == "checked_in"
    assert [s["result"] for s in scans(db)] == ["revoked_badge", "checked_in"]


def _person_in(db, event, cohort_id, first="มานี", status="active"):
    person = register_participant(db, events.cohort_by_id(db, cohort_id),
                                  {"first_name": first, "last_name": "มีนา", "province": "กรุงเทพมหานคร"},
                                  via="walk_in")
    if status != "active":
        changes.write(db, event["program_id"], "participants", person["id"], {"status": status})
    return person["id"], person["code"]


def test_person_of_another_cohort_is_wrong_cohort(db, event, day1):
    pid, code = _person_in(db, event, event["cohort2_id"])
    error = expect_reason("wrong_cohort", check_in, db, code, at=at(day1))
    assert error.session["id"] == day1["id"]
    assert scans(db)[0]["participant_id"] == pid
    assert attendance(db) == []


def test_chosen_session_of_another_cohort_is_wrong_cohort(db, event, day1):
    pid, code = _person_in(db, event, event["cohort2_id"])
    expect_reason("wrong_cohort", check_in, db, code, session_id=day1["id"], at=at(day1))


@pytest.mark.parametrize("hhmm", ["06:59", "17:00", "23:30"])
def test_outside_the_window_is_no_open_session(db, event, day1, hhmm):
    expect_reason("no_open_session", check_in, db, event["people"][0]["code"], at=at(day1, hhmm))
    assert scans(db)[0]["result"] == "no_open_session"
    assert attendance(db) == []


def test_window_edges_are_opens_inclusive_closes_exclusive(db, event, day1):
    assert check_in(db, event["people"][0]["code"], at=at(day1, "07:00")).status == "checked_in"
    assert check_in(db, event["people"][1]["code"], at=at(day1, "16:59")).status == "checked_in"


def test_chosen_session_that_is_closed_is_no_open_session(db, event):
    day1, day2 = event["sessions"]
    error = expect_reason("no_open_session", check_in, db, event["people"][0]["code"], session_id=day2["id"],
                          at=at(day1))
    assert error.session["id"] == day2["id"]


def test_chosen_session_that_does_not_exist_is_no_open_session(db, event, day1):
    expect_reason("no_open_session", check_in, db, event["people"][0]["code"], session_id="nope", at=at(day1))
    assert scans(db)[0]["session_id"] is None


def test_staff_choice_picks_between_open_slots(db, event, day1):
    morning, afternoon = events.split_day(db, day1["id"])
    events.changes.write(db, event["program_id"], "sessions", afternoon, {"opens_at": "11:00"})
    code = event["people"][0]["code"]
    assert check_in(db, code, at=at(day1, "11:30")).session["id"] == afternoon  # the later-opened one
    assert check_in(db, code, session_id=morning, at=at(day1, "11:30")).session["id"] == morning
    assert len(attendance(db)) == 2


def test_clock_picks_the_afternoon_slot(db, event, day1):
    morning, afternoon = events.split_day(db, day1["id"])
    assert check_in(db, event["people"][0]["code"], at=at(day1, "13:00")).session["id"] == afternoon
    assert check_in(db, event["people"][1]["code"], at=at(day1, "08:00")).session["id"] == morning


def test_withdrawn_person_is_refused(db, event, day1):
    pid, code = _person_in(db, event, event["cohort_id"], status="withdrawn")
    expect_reason("withdrawn", check_in, db, code, at=at(day1))
    expect_reason("withdrawn", check_in, db, participant_id=pid, at=at(day1))
    assert attendance(db) == []


def test_check_out_after_check_in(db, event, day1):
    code = event["people"][0]["code"]
    expect_reason("not_checked_in", check_in, db, code, at=at(day1, "08:00"), direction="out")
    check_in(db, code, at=at(day1, "08:05"))
    out = check_in(db, code, at=at(day1, "17:30"), direction="out")  # after closing: check-out still works
    assert out.status == "checked_out"
    [row] = attendance(db)
    assert row["last_out_at"] == out.at
    assert [s["direction"] for s in scans(db)] == ["out", "in", "out"]


def test_same_nonce_twice_returns_the_first_result_and_stores_nothing(db, event, day1):
    code = event["people"][0]["code"]
    first = check_in(db, code, at=at(day1, "08:00"), device="d1", nonce="retry-me")
    before = count_changes(db)
    again = check_in(db, code, at=at(day1, "08:01"), device="d1", nonce="retry-me")
    assert (again.status, again.scan_id, again.at, again.replayed) == ("checked_in", first.scan_id, first.at, True)
    assert count_changes(db) == before
    assert len(scans(db)) == 1


def test_same_nonce_after_a_failure_raises_the_first_reason_again(db, event, day1):
    expect_reason("invalid_code", check_in, db, "NOPE", at=at(day1), device="d1", nonce="n")
    again = expect_reason("invalid_code", check_in, db, event["people"][0]["code"], at=at(day1), device="d1",
                          nonce="n")
    assert again.replayed
    assert len(scans(db)) == 1
    assert attendance(db) == []


def test_same_nonce_on_another_device_is_another_scan(db, event, day1):
    code = event["people"][0]["code"]
    check_in(db, code, at=at(day1), device="d1", nonce="n")
    assert check_in(db, code, at=at(day1), device="d2", nonce="n").status == "already_checked_in"
    assert len(scans(db)) == 2


def test_default_device_is_this_database(db, event, day1):
    check_in(db, event["people"][0]["code"], at=at(day1))
    assert scans(db)[0]["device_id"] == device_id(db)


def test_staff_override_by_participant_id_follows_the_same_rules(db, event, day1):
    person = event["people"][1]
    result = check_in(db, participant_id=person["id"], at=at(day1), operator="door")
    assert result.status == "checked_in"
    assert scans(db)[0]["code"] is None
    assert check_in(db, participant_id=person["id"], at=at(day1)).status == "already_checked_in"
    expect_reason("unknown_participant", check_in, db, participant_id="nobody", at=at(day1))
    expect_reason("no_open_session", check_in, db, participant_id=person["id"], at=at(day1, "05:00"))
    assert len(attendance(db)) == 1


def test_attempt_on_a_kiosk_without_any_program_is_refused_and_not_stored(db):
    expect_reason("invalid_code", check_in, db, "ABC")
    assert scans(db) == []


def test_search_finds_people_by_any_part_of_the_name_and_marks_who_is_in(db, event, day1):
    check_in(db, event["people"][0]["code"], at=at(day1))
    found = find_people(db, "หญิง", day1["id"])
    assert [p["name"] for p in found] == ["นางสาวสมหญิง ใจดี"]
    assert found[0]["checked_in_at"] and "nid_hash" not in found[0] and "phone" not in found[0]
    assert {p["first_name"] for p in find_people(db, "5678")} == {"สมหญิง", "สมชาย", "ลำดวน"}


def test_two_devices_racing_for_one_person_count_once(data_dir, event, day1):
    """Real threads, separate connections on one file: one checked_in, one already_checked_in."""
    for person in event["people"]:
        barrier = threading.Barrier(2)
        outcomes = []

        def scan(device):
            db = connect(data_dir / "kiosk.db")
            try:
                barrier.wait()
                outcomes.append(check_in(db, person["code"], at=at(day1), device=device).status)
            finally:
                db.close()

        threads = [threading.Thread(target=scan, args=(f"tablet-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["already_checked_in", "checked_in"]
    db = open_data_dir(data_dir)
    assert db.execute("select count(*) from attendance").fetchone()[0] == len(event["people"])
    assert db.execute("select count(*) from scans where result = 'checked_in'").fetchone()[0] == len(event["people"])


def test_the_door_domain_imports_no_web_framework():
    import subprocess
    import sys

    probe = ("import sys, kiosk.door.checkin, kiosk.door.screen; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'jinja2', 'flask_babel')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_a_person_on_the_waiting_list_is_not_admitted_at_the_door(db, event, day1):
    from kiosk.badges.issuing import BadgeError, reissue_badge
    from kiosk.door.screen import find_people
    from kiosk.people.participants import register_participant
    from kiosk.program.events import cohort_by_id

    cohort = cohort_by_id(db, event["cohort_id"])
    waiting = register_participant(db, cohort, {"first_name": "รอคิว", "last_name": "ใจเย็น", "phone": "0866660000"},
                                   issue_badge=False, via="walk_in", status="waiting")
    with pytest.raises(CheckinError) as refused:
        check_in(db, participant_id=waiting["id"], at=at(day1, "09:00"))
    assert refused.value.reason == "not_admitted"
    assert refused.value.participant["id"] == waiting["id"]
    with pytest.raises(BadgeError) as no_badge:
        reissue_badge(db, waiting["id"])
    assert no_badge.value.reason == "not_admitted"
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0
    assert [p["status"] for p in find_people(db, "รอคิว")] == ["waiting"]
