"""Times come from the laptop: what a tablet's queued registration or scan may say about when it was
made (issue 20, finding 3).

A tablet that could not reach the laptop keeps its work with the laptop's signed time of its last
contact and how long after that, on its own clock, it made each item; the laptop turns that into
its own time and accepts it only within bounds it can check. The hostile caller is a paired
registration tablet (or a logged-in scan page) sending whatever it likes.
"""

from datetime import timedelta

import pytest

from kiosk.clock import iso, local_day, now_utc, parse_iso
from kiosk.people import tablets
from kiosk.people.participants import register_participant
from kiosk.people.tablets import LateClaim, OfflineError, carried_time, note_contact
from kiosk.program import events

from support import bangkok, tablet_client

WALK_IN = {"title": "นาง", "first_name": "บุญมี", "last_name": "ศรีงาม", "role": "participant",
           "province": "10", "district": "1026", "subdistrict": "102602", "phone": "0877770001", "pdpa": "1"}
NID = "1103700123458"


@pytest.fixture
def venue(make_event):
    """Cohort 1 met yesterday and meets today (07:00-17:00 both days); four people with badges."""
    return make_event(starts_on=local_day() - timedelta(days=1))


@pytest.fixture
def tab(app, db, venue):
    return tablet_client(app, db, venue["cohort_id"])


def submit(browser, key, fields=WALK_IN, **extra):
    return browser.post("/register/submit", json={"key": key, "fields": fields, **extra})


def yesterday_at(venue, hhmm):
    return iso(bangkok(venue["sessions"][0]["day"], hhmm))


def attendance(db):
    return db.execute("select participant_id, session_id from attendance").fetchall()


# --- the tablet page, as a hostile caller -----------------------------------------------------

def test_a_walk_in_is_never_checked_in_to_a_past_day_from_the_tablet(db, tab, venue):
    tablets.save_settings(db, venue["cohort_id"], "refuse", True, 60)  # registering checks in
    body = submit(tab, "backdated-key-0001", deferred=True, made_at=yesterday_at(venue, "10:00")).get_json()
    assert body["ok"] is True
    created = db.execute("select created_at from participants where phone = '0877770001'").fetchone()[0]
    assert parse_iso(created) > now_utc() - timedelta(minutes=1)  # the laptop's time, not the tablet's
    assert venue["sessions"][0]["id"] not in {s for _, s in attendance(db)}


def test_one_national_id_sent_again_and_again_fills_no_past_day(db, tab, venue):
    tablets.save_settings(db, venue["cohort_id"], "refuse", True, 60)
    for n, hhmm in enumerate(("08:00", "10:00", "12:00", "15:00")):
        submit(tab, f"backdated-key-{n:04d}", {**WALK_IN, "national_id": NID}, deferred=True,
               made_at=yesterday_at(venue, hhmm))
    assert db.execute("select count(*) from participants where nid_last4 = ?", [NID[-4:]]).fetchone()[0] == 1
    assert venue["sessions"][0]["id"] not in {s for _, s in attendance(db)}


def test_deferred_with_someone_elses_national_id_returns_no_badge(db, tab, venue):
    cohort = events.cohort_by_id(db, venue["cohort_id"])
    victim = register_participant(db, cohort, {"first_name": "มาลี", "last_name": "ทองคำ", "phone": "0865550101",
                                               "province": "กรุงเทพมหานคร", "district": "ดินแดง", "national_id": NID})
    answer = submit(tab, "deferred-key-00001", {**WALK_IN, "national_id": NID}, deferred=True,
                    made_at=iso(now_utc()))
    body = answer.get_json()
    assert (answer.status_code, body["reason"]) == (409, "national_id_taken")
    assert victim["code"] not in answer.get_data(as_text=True) and "badge" not in body


def test_a_queued_registration_keeps_its_time_counted_from_the_last_contact(db, tab, venue):
    contact = tab.post("/register/contact", json={}).get_json()
    assert contact["ok"] is True and contact["contact"]
    # The tablet's clock is 40 minutes slow: only the time since the contact counts.
    seen = now_utc() - timedelta(minutes=40)
    body = submit(tab, "queued-key-000001", deferred=True, contact=contact["contact"], contact_seen_at=iso(seen),
                  made_at=iso(seen)).get_json()
    assert body["made_at"] == contact["server_time"]  # not 40 minutes earlier
    assert db.execute("select created_at from participants where id = (select participant_id from"
                      " registration_keys where key = 'queued-key-000001')").fetchone()[0] == body["made_at"]


@pytest.mark.parametrize("claim", ["before the contact", "another tablet's contact", "forged contact"])
def test_a_queued_registration_whose_time_cannot_be_checked_takes_the_laptops(app, db, tab, venue, claim):
    tablets.save_settings(db, venue["cohort_id"], "refuse", True, 60)
    contact = tab.post("/register/contact", json={}).get_json()["contact"]
    seen, made = now_utc(), now_utc() - timedelta(hours=20)  # "made" yesterday, before the contact
    if claim == "another tablet's contact":
        other = tablet_client(app, db, venue["cohort_id"], "B")
        contact, made = other.post("/register/contact", json={}).get_json()["contact"], now_utc()
        seen = made - timedelta(hours=20)
    elif claim == "forged contact":
        contact, made = contact[:-4] + "AAAA", now_utc()
        seen = made - timedelta(hours=20)
    body = submit(tab, "queued-key-000002", deferred=True, contact=contact, contact_seen_at=iso(seen),
                  made_at=iso(made)).get_json()
    assert parse_iso(body["made_at"]) > now_utc() - timedelta(minutes=1)
    assert venue["sessions"][0]["id"] not in {s for _, s in attendance(db)}


def test_a_genuine_walk_in_sent_later_is_checked_in_to_todays_session(db, tab, venue):
    tablets.save_settings(db, venue["cohort_id"], "refuse", True, 60)
    today = venue["sessions"][1]
    events_window = {"opens_at": "00:00", "closes_at": "23:59"}
    from kiosk.store import changes
    changes.write(db, venue["program_id"], "sessions", today["id"], events_window)
    contact = tab.post("/register/contact", json={}).get_json()["contact"]
    seen = now_utc()
    body = submit(tab, "queued-key-000003", deferred=True, contact=contact, contact_seen_at=iso(seen),
                  made_at=iso(seen)).get_json()
    assert body["checkin"]["status"] == "checked_in" and body["checkin"]["session"]["id"] == today["id"]


# --- the rules themselves, with the clock in hand ---------------------------------------------

def test_the_carried_time_is_the_contact_plus_the_time_the_tablet_counted(db, venue):
    quiet = bangkok(venue["sessions"][1]["day"], "09:00")
    note_contact(db, "tablet:t1", now=quiet)
    claim = LateClaim("tablet:t1", quiet, timedelta(minutes=12))
    assert carried_time(db, claim, local_day(quiet), now=quiet + timedelta(hours=1)) == quiet + timedelta(minutes=12)


@pytest.mark.parametrize("case", ["before the last contact", "ahead of the laptop", "in contact since",
                                  "two session days back"])
def test_a_carried_time_out_of_bounds_is_refused(db, make_event, case):
    event = make_event(starts_on=local_day() - timedelta(days=2), days=3)
    day1, day2, day3 = (s["day"] for s in event["sessions"])
    quiet, now = bangkok(day3, "09:00"), bangkok(day3, "11:00")
    elapsed = {"before the last contact": timedelta(minutes=-5), "ahead of the laptop": timedelta(hours=3),
               "in contact since": timedelta(minutes=40), "two session days back": timedelta(0)}[case]
    if case == "two session days back":
        quiet = bangkok(day1, "09:00")
    note_contact(db, "tablet:t1", now=quiet)
    if case == "in contact since":  # the tablet kept reaching the laptop after the stamp it shows
        for minute in range(1, 60):
            note_contact(db, "tablet:t1", now=quiet + timedelta(minutes=minute))
    with pytest.raises(OfflineError) as refused:
        carried_time(db, LateClaim("tablet:t1", quiet, elapsed), local_day(now) - timedelta(days=1), now=now)
    assert refused.value.reason == "bad_time"


# --- the scan page's queued scans and the staff API -------------------------------------------

def test_a_queued_scan_keeps_the_time_it_was_made(staff, db, venue):
    today = venue["sessions"][1]
    from kiosk.store import changes
    changes.write(db, venue["program_id"], "sessions", today["id"], {"opens_at": "00:00", "closes_at": "23:59"})
    contact = staff.post("/api/contact", json={}).get_json()
    seen = now_utc() - timedelta(minutes=40)  # a slow clock again
    body = staff.post("/api/checkins", json={"code": venue["people"][0]["code"], "queued": True, "nonce": "q1",
                                             "contact": contact["contact"], "contact_seen_at": iso(seen),
                                             "at": iso(seen)}).get_json()
    assert body["status"] == "checked_in" and body["at"] == contact["server_time"]


def test_a_queued_scan_cannot_land_in_a_session_that_closed_before_the_tablet_went_quiet(staff, db, venue):
    yesterday = venue["sessions"][0]
    contact = staff.post("/api/contact", json={}).get_json()["contact"]
    seen = now_utc()
    for made in (seen - timedelta(hours=20), seen):
        body = staff.post("/api/checkins", json={"code": venue["people"][0]["code"], "queued": True,
                                                 "session": yesterday["id"], "contact": contact,
                                                 "contact_seen_at": iso(seen), "at": iso(made)}).get_json()
        assert body["reason"] in ("bad_time", "no_open_session")
    assert attendance(db) == []


def test_a_scan_more_than_one_session_day_back_is_refused(staff, db, make_event):
    event = make_event(starts_on=local_day() - timedelta(days=2), days=3)
    two_back = iso(bangkok(event["sessions"][0]["day"], "09:00"))
    body = staff.post("/api/checkins", json={"code": event["people"][0]["code"], "at": two_back}).get_json()
    assert body["reason"] == "bad_time"
    one_back = iso(bangkok(event["sessions"][1]["day"], "09:00"))
    assert staff.post("/api/checkins", json={"code": event["people"][0]["code"], "at": one_back}).get_json()["ok"]
