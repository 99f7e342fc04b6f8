"""A coordinator corrects mistakes: sessions (day, slot, window), targets, and attendance by hand.

Every correction is a change in the log (it syncs like any other); a session or target never
vanishes silently with its attendance; attendance corrected by hand says who, when and why.
"""

from datetime import date, timedelta

import pytest

from kiosk.clock import iso, local_day, now_utc
from kiosk.door.checkin import check_in
from kiosk.errors import KioskError
from kiosk.people import participants as people
from kiosk.program import events
from kiosk.reports import attendance as att
from kiosk.reports.sources import kiosk_dataset
from kiosk.store import changes

from support import bangkok


def _reason(call) -> str:
    with pytest.raises(KioskError) as caught:
        call()
    return caught.value.reason


def _logged(db, entity: str, entity_id: str) -> list[dict]:
    rows = db.execute("select payload, op from changes where entity = ? and entity_id = ? order by hlc",
                      [entity, entity_id]).fetchall()
    return rows


def test_an_overlapping_session_is_refused_with_the_times_it_overlaps(db, event):
    day = date.fromisoformat(event["sessions"][0]["day"])
    with pytest.raises(KioskError) as caught:
        events.add_session(db, event["cohort_id"], day, "morning", "08:00", "10:00")
    assert caught.value.reason == "session_overlap" and "07:00–17:00" in str(caught.value)
    assert len(events.sessions(db, event["cohort_id"])) == 2  # nothing added


def test_a_wrong_window_is_corrected_and_the_correction_is_logged_for_sync(db, event):
    first = event["sessions"][0]
    changed = events.edit_session(db, first["id"], date.fromisoformat(first["day"]), "day", "08:30", "16:00")
    assert changed == ["closes_at", "opens_at"]
    held = events.get_session(db, first["id"])
    assert (held["opens_at"], held["closes_at"]) == ("08:30", "16:00")
    assert '"opens_at":"08:30"' in _logged(db, "sessions", first["id"])[-1][0]


def test_a_session_moved_to_another_day_takes_the_cohort_dates_with_it(db, event):
    second = event["sessions"][1]
    later = date.fromisoformat(second["day"]) + timedelta(days=5)
    events.edit_session(db, second["id"], later, "day")
    assert events.cohort_by_id(db, event["cohort_id"])["ends_on"] == later.isoformat()


def test_a_session_with_check_ins_keeps_its_day_but_its_times_can_be_fixed(db, open_event):
    first = events.get_session(db, open_event["session_id"])
    check_in(db, open_event["people"][0]["code"])
    day = date.fromisoformat(first["day"])
    assert _reason(lambda: events.edit_session(db, first["id"], day + timedelta(days=1), "day")) == "session_has_checkins"
    events.edit_session(db, first["id"], day, "day", "00:00", "23:59")
    assert events.get_session(db, first["id"])["closes_at"] == "23:59"


def test_a_removed_session_counts_nowhere_but_keeps_its_check_ins_until_restored(db, open_event):
    first = open_event["session_id"]
    check_in(db, open_event["people"][0]["code"])
    before = att.totals(kiosk_dataset(db, open_event["program_id"], open_event["cohort_id"]))
    assert events.remove_session(db, first) == 1  # the one check-in it holds is said
    after = att.totals(kiosk_dataset(db, open_event["program_id"], open_event["cohort_id"]))
    assert (before["sessions"], before["marks"]) == (2, 1) and (after["sessions"], after["marks"]) == (1, 0)
    assert [s["id"] for s in events.sessions(db, open_event["cohort_id"], removed=True)] == [first]
    assert _reason(lambda: check_in(db, open_event["people"][1]["code"], first)) == "no_open_session"
    assert events.restore_session(db, first) == 1
    assert att.totals(kiosk_dataset(db, open_event["program_id"], open_event["cohort_id"]))["marks"] == 1


def test_a_restored_session_may_not_overlap_one_added_in_its_place(db, event):
    first = event["sessions"][0]
    events.remove_session(db, first["id"])
    events.add_session(db, event["cohort_id"], date.fromisoformat(first["day"]), "morning")
    assert _reason(lambda: events.restore_session(db, first["id"])) == "session_overlap"


def test_targets_take_areas_from_the_lists_with_their_district_and_province(db, event):
    target = events.add_target(db, event["program_id"], 15, event["cohort_id"], "participant",
                               area_codes=("10", "1026", "102601"))
    held = events.get_target(db, target)
    assert held["area_code"] == "102601" and held["area_name"] == "แขวงดินแดง เขตดินแดง กรุงเทพมหานคร"
    # a district of another province is refused, never matched to something else
    assert _reason(lambda: events.add_target(db, event["program_id"], 5, area_codes=("22", "1026", ""))) == "unknown_area"


def test_a_second_identical_target_is_refused_and_a_target_can_be_removed(db, event):
    codes = ("10", "1026", "")
    target = events.add_target(db, event["program_id"], 22, event["cohort_id"], "participant", area_codes=codes)
    again = lambda: events.add_target(db, event["program_id"], 30, event["cohort_id"], "participant", area_codes=codes)  # noqa: E731
    assert _reason(again) == "duplicate_target"
    events.remove_target(db, target)
    assert events.get_target(db, target) is None
    assert _logged(db, "targets", target)[-1][1] == "delete"
    again()  # the place is free again


def test_a_target_is_corrected_in_place(db, event):
    target = events.add_target(db, event["program_id"], 200, event["cohort_id"], area_codes=("", "", ""))
    assert events.edit_target(db, target, 180, event["cohort_id"], "participant", ("10", "", "")) == [
        "area_code", "area_name", "expected", "role"]
    assert events.get_target(db, target)["expected"] == 180
    assert _reason(lambda: events.edit_target(db, target, -1, None, None, ("", "", ""))) == "bad_target"


def test_a_check_in_undone_by_a_coordinator_stops_counting_and_says_who_when_and_why(db, open_event):
    person = people.get_participant(db, open_event["people"][0]["id"])
    session = events.get_session(db, open_event["session_id"])
    check_in(db, open_event["people"][0]["code"])
    people.undo_checkin(db, person, session, "chief", "บัตรของคนอื่น")
    assert att.totals(kiosk_dataset(db, open_event["program_id"]))["marks"] == 0
    [note] = people.corrections_of(db, person["id"])
    assert (note["result"], note["operator"], note["note"]) == ("undone", "chief", "บัตรของคนอื่น")
    assert check_in(db, open_event["people"][0]["code"]).status == "checked_in"  # a new scan counts again


def test_an_undo_cancels_an_earlier_scan_that_reaches_this_kiosk_after_it(db, open_event):
    """Another device's scan, made before the undo but synced after it, must not bring the person back."""
    person = people.get_participant(db, open_event["people"][1]["id"])
    session = events.get_session(db, open_event["session_id"])
    check_in(db, open_event["people"][1]["code"])
    people.undo_checkin(db, person, session, "chief", "สแกนผิดคน")
    earlier = iso(now_utc() - timedelta(minutes=5))
    changes.write(db, open_event["program_id"], "scans", "late-scan-from-tablet", {
        "participant_id": person["id"], "session_id": session["id"], "result": "checked_in", "direction": "in",
        "device_id": "tablet-2", "at": earlier, "nonce": "n1"})
    assert db.execute("select count(*) from attendance where participant_id = ?", [person["id"]]).fetchone()[0] == 0


def test_marking_present_by_hand_needs_a_reason_and_a_session_that_has_begun(db, event):
    person = people.get_participant(db, event["people"][0]["id"])
    today, tomorrow = (events.get_session(db, s["id"]) for s in event["sessions"])
    assert _reason(lambda: people.mark_attended(db, person, today, "chief", "  ")) == "missing_reason"
    assert _reason(lambda: people.mark_attended(db, person, tomorrow, "chief", "ลืมบัตร")) == "session_not_started"
    people.mark_attended(db, person, today, "chief", "ลืมบัตร เจ้าหน้าที่ยืนยัน")
    assert _reason(lambda: people.mark_attended(db, person, today, "chief", "ซ้ำ")) == "already_attended"
    data = kiosk_dataset(db, event["program_id"])
    assert [a["via"] for a in data.attendance] == ["manual"]


def test_a_person_of_another_cohort_cannot_be_marked_at_this_session(db, event):
    cohort2 = events.cohort_by_id(db, event["cohort2_id"])
    stranger = people.register_participant(db, cohort2, {"first_name": "มานี", "last_name": "มีนา"})
    session = events.get_session(db, event["session_id"])
    assert _reason(lambda: people.mark_attended(db, stranger, session, "chief", "x")) == "wrong_cohort"


def test_the_venue_day_decides_whether_a_session_has_begun(db, event):
    person = people.get_participant(db, event["people"][0]["id"])
    tomorrow = events.get_session(db, event["sessions"][1]["id"])
    at = bangkok(tomorrow["day"], "01:30")  # just after midnight at the venue, still "yesterday" in UTC
    assert local_day(at).isoformat() == tomorrow["day"]
    people.mark_attended(db, person, tomorrow, "chief", "มาก่อนเวลา", at=at)


# --- on the web -------------------------------------------------------------------------------

def test_removing_a_session_on_the_web_says_what_happens_to_its_check_ins(coordinator, db, open_event):
    check_in(db, open_event["people"][0]["code"])
    coordinator.get("/?lang=en")
    page = coordinator.get(f"/cohorts/{open_event['cohort_id']}").get_data(as_text=True)
    assert "1 people checked in to this session. Their check-ins stay on record" in page
    answer = coordinator.post(f"/sessions/{open_event['session_id']}/remove", follow_redirects=True)
    text = answer.get_data(as_text=True)
    assert "Its 1 check-ins are kept on record but count nowhere" in text and "Removed sessions" in text
    coordinator.post(f"/sessions/{open_event['session_id']}/restore")
    assert events.get_session(db, open_event["session_id"])["status"] == "active"


def test_a_wrong_window_is_fixed_on_the_web_and_an_overlap_is_explained(coordinator, db, event):
    first, second = event["sessions"]
    coordinator.get("/?lang=en")
    coordinator.post(f"/sessions/{first['id']}/edit", data={"day": first["day"], "slot": "day",
                                                           "opens_at": "08:00", "closes_at": "16:30"})
    assert events.get_session(db, first["id"])["opens_at"] == "08:00"
    answer = coordinator.post(f"/sessions/{second['id']}/edit", follow_redirects=True, data={
        "day": first["day"], "slot": "afternoon", "opens_at": "13:00", "closes_at": "16:00"})
    assert "These times overlap another session" in answer.get_data(as_text=True)
    assert events.get_session(db, second["id"])["day"] == second["day"]


def test_the_cohort_page_finds_people_by_any_part_of_the_name_or_the_phones_last_digits(coordinator, event):
    base = f"/cohorts/{event['cohort_id']}"
    by_name = coordinator.get(base, query_string={"q": "ใจด"}).get_data(as_text=True)
    assert "สมหญิง" in by_name and "สมชาย" not in by_name
    by_phone = coordinator.get(base, query_string={"q": "5678"}).get_data(as_text=True)
    assert by_phone.count("/badge.pdf") == 3  # the three who share 0812345678, each with "print badge"


def test_marking_present_on_the_web_shows_who_when_and_why_on_the_persons_page(coordinator, db, event):
    person = event["people"][1]
    coordinator.get("/?lang=en")
    coordinator.post(f"/participants/{person['id']}/attendance", data={
        "action": "mark", "session_id": event["session_id"], "reason": "ลืมบัตร ยืนยันโดยวิทยากร"})
    page = coordinator.get(f"/participants/{person['id']}").get_data(as_text=True)
    assert "Marked present" in page and "by coord" in page and "ลืมบัตร ยืนยันโดยวิทยากร" in page
    refused = coordinator.post(f"/participants/{person['id']}/attendance", follow_redirects=True, data={
        "action": "undo", "session_id": event["session_id"], "reason": ""}).get_data(as_text=True)
    assert "Say why" in refused
    assert db.execute("select count(*) from attendance").fetchone()[0] == 1


def test_the_central_server_counts_a_correction_by_hand_as_the_kiosk_does(tmp_path, central_server):
    """Corrections sync like every change: after a sync both servers give the same numbers."""
    from kiosk.reports.sources import kiosk_dataset as on_kiosk
    from sync.central.reports import central_dataset
    from sync.client import sync_once

    from support import Kiosk, build_event, enrol

    kiosk = Kiosk(tmp_path / "venue")
    venue = build_event(kiosk.db, open_now=True)
    session = events.get_session(kiosk.db, venue["session_id"])
    first, second, third = (people.get_participant(kiosk.db, p["id"]) for p in venue["people"][:3])
    for badge in venue["people"][:2]:
        check_in(kiosk.db, badge["code"])
    server = central_server()
    enrol(kiosk, server.url, server.storage())
    sync_once(kiosk.data_dir)  # the two check-ins reach central first
    people.undo_checkin(kiosk.db, first, session, "chief", "บัตรของคนอื่น")
    people.mark_attended(kiosk.db, third, session, "chief", "ลืมบัตร")
    sync_once(kiosk.data_dir)
    here, there = on_kiosk(kiosk.db, venue["program_id"]), central_dataset(server.storage(), venue["program_id"])
    assert sorted((a["participant_id"], a["via"]) for a in here.attendance) == sorted(
        (a["participant_id"], a["via"]) for a in there.attendance) == sorted([(second["id"], "door"), (third["id"], "manual")])
    kiosk.close()
