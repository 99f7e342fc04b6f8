"""What the door says when it refuses, in Thai and English: when check-in opens or closed, which cohort
and day the person belongs to, never an internal code; a badge code typed with 0 for O (issue 22,
points 3 and 10)."""

from datetime import timedelta

import pytest

from kiosk.badges.codes import make_code, normalize_code, verify_code
from kiosk.badges.issuing import reissue_badge
from kiosk.clock import iso, local_day
from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.trust.programkeys import badge_key

from support import bangkok

REASON_CODES = ("no_open_session", "wrong_cohort", "invalid_code", "not_admitted")


def scan(client, code, at, lang="en", **extra):
    answer = client.post(f"/api/checkins?lang={lang}", json={"code": code, "at": iso(at), **extra})
    return answer.get_json()


@pytest.fixture
def event(make_event):
    """Cohort 1 met yesterday (07:00-17:00) and meets today; cohort 2 meets on 7 January 2030."""
    return make_event(starts_on=local_day() - timedelta(days=1))


@pytest.fixture
def today(event):
    """The day the scans are made: yesterday, so that every hour of it is in the past."""
    return event["sessions"][0]["day"]


@pytest.mark.parametrize("lang, hhmm, said", [
    ("en", "06:15", "Check-in for cohort 1 opens at 07:00."),
    ("th", "06:15", "รุ่นที่ 1 เปิดให้ลงชื่อเข้างานเวลา 07:00 น."),
    ("en", "17:30", "Check-in for cohort 1 closed at 17:00."),
    ("th", "17:30", "รุ่นที่ 1 ปิดการลงชื่อเข้างานแล้วเมื่อเวลา 17:00 น."),
])
def test_before_opening_or_after_closing_the_door_says_when(staff, event, today, lang, hhmm, said):
    body = scan(staff, event["people"][0]["code"], bangkok(today, hhmm), lang)
    assert body["reason"] == "no_open_session"
    assert body["error"] == said
    assert not any(code in body["error"] for code in REASON_CODES)


@pytest.mark.parametrize("lang, said", [
    ("en", "Cohort 1 has no session today. Its days: {first} – {last}."),
    ("th", "รุ่นที่ 1 ไม่มีการอบรมวันนี้ วันอบรมของรุ่น: {first} – {last}"),
])
def test_a_day_without_a_session_names_the_cohorts_days(app, staff, db, make_event, lang, said):
    from flask_babel import force_locale

    from kiosk.webkit.language import thai_date
    first = local_day() - timedelta(days=5)
    event = make_event(starts_on=first, days=2, second_cohort=False)
    body = scan(staff, event["people"][0]["code"], bangkok(str(first + timedelta(days=4)), "09:00"), lang)
    with app.test_request_context(), force_locale(lang):
        days = {"first": thai_date(first, lang=lang), "last": thai_date(first + timedelta(days=1), lang=lang)}
    assert body["reason"] == "no_open_session" and body["error"] == said.format(**days)


@pytest.mark.parametrize("lang, said", [
    ("en", "This person is in cohort 2, which meets on 7 January 2030."),
    ("th", "ผู้นี้อยู่รุ่นที่ 2 ซึ่งอบรมวันที่ 7 มกราคม พ.ศ. 2573"),
])
def test_a_wrong_cohort_says_which_cohort_and_day_the_person_belongs_to(staff, db, event, today, lang, said):
    cohort2 = events.cohort_by_id(db, event["cohort2_id"])
    person = register_participant(db, cohort2, {"first_name": "ประยงค์", "last_name": "ใจกว้าง"})
    body = scan(staff, person["code"], bangkok(today, "09:00"), lang)
    assert body["reason"] == "wrong_cohort" and body["error"] == said


def test_a_code_typed_with_zero_for_o_and_one_for_i_is_the_same_badge(staff, db, event, today):
    key = badge_key(db, event["program_id"])
    code = make_code(event["program_id"], key)
    while "O" not in code and "I" not in code:
        code = make_code(event["program_id"], key)
    typed = code.replace("O", "0").replace("I", "1")
    assert normalize_code(typed) == code and verify_code(typed, {event["program_id"]: key}) == event["program_id"]
    person = event["people"][0]
    issued = reissue_badge(db, person["id"])
    while "O" not in issued and "I" not in issued:
        issued = reissue_badge(db, person["id"])
    body = scan(staff, issued.replace("O", "0").replace("I", "1"), bangkok(today, "09:00"))
    assert body["status"] == "checked_in", body


def test_the_scan_page_says_a_session_opens_later_rather_than_closed(staff, db, make_event):
    from kiosk.store import changes
    event = make_event()
    changes.write(db, event["program_id"], "sessions", event["session_id"], {"opens_at": "23:58", "closes_at": "23:59"})
    html = staff.get("/scan?lang=en").get_data(as_text=True)
    assert "(opens at 23:58)" in html and "closed" not in html.split('id="scan-session"')[1].split("</select>")[0]
