"""Self-registration through the Flask client and the domain: bad input, duplicates, quotas, keys, fences."""

import unicodedata

import pytest
from flask_babel import force_locale, gettext

from kiosk import create_app
from kiosk.errors import message_of
from kiosk.people import tablets
from kiosk.program import events
from kiosk.thai import name_key, similar_names

WALK_IN = {"title": "นางสาว", "first_name": "สมศรี", "last_name": "มีสุข", "role": "participant",
           "position": "กรรมการชุมชน", "organization": "ชุมชนบ้านมั่นคง", "province": "10", "district": "1026",
           "subdistrict": "102602", "phone": "0891234567", "national_id": "", "pdpa": "1"}
VALID_NID = "1103700123458"


def counts(db):
    return tuple(db.execute(f"select count(*) from {t}").fetchone()[0]
                 for t in ("participants", "badges", "changes", "registration_keys"))


@pytest.fixture
def venue(open_event):
    return open_event


@pytest.fixture
def tablet(db, venue):
    paired = tablets.pair_tablet(db, venue["cohort_id"], "A")
    found, token = tablets.claim_pairing(db, paired["code"])
    return {**found, "token": token}


@pytest.fixture
def tab(app, tablet):
    """A paired tablet's browser."""
    browser = app.test_client()
    browser.set_cookie("kiosk_tablet", tablet["token"])
    return browser


def submit(client, fields, key="k" * 20, lang="th", **extra):
    return client.post(f"/register/submit?lang={lang}", json={"key": key, "fields": fields, **extra})


def message(reason, lang, app):
    with app.test_request_context(), force_locale(lang):
        return gettext(message_of(reason))


BAD_INPUT = [
    ({"first_name": "     "}, "first_name", "missing_name"),
    ({"last_name": "\u3000 \t "}, "last_name", "missing_name"),
    ({"first_name": "ก" * 500}, "first_name", "name_too_long"),
    ({"organization": "ช" * 500}, "organization", "field_too_long"),
    ({"first_name": "<script>alert(1)</script>"}, "first_name", "bad_text"),
    ({"last_name": "มีสุข<img src=x onerror=alert(1)>"}, "last_name", "bad_text"),
    ({"title": "<b>ดร.</b>"}, "title", "bad_text"),
    ({"position": "javascript:alert(1)"}, "position", "bad_text"),
    ({"organization": "ชุมชน&#60;script&#62;"}, "organization", "bad_text"),
    ({"first_name": "สม\u202eศรี"}, "first_name", "bad_text"),
    ({"national_id": "1103700123457"}, "national_id", "bad_national_id"),
    ({"phone": "08l234S678"}, "phone", "bad_phone"),
    ({"phone": ""}, "phone", "missing_phone"),
    ({"district": "5001"}, "district", "unknown_area"),  # a district of Chiang Mai under Bangkok
    ({"subdistrict": "100101"}, "subdistrict", "unknown_area"),  # a subdistrict of another district
    ({"province": ""}, "province", "missing_area"),
    ({"pdpa": ""}, "pdpa", "pdpa_required"),
    ({"role": "admin"}, "role", "unknown_role"),
]


@pytest.mark.parametrize("lang", ["th", "en"])
@pytest.mark.parametrize("change, field, reason", BAD_INPUT)
def test_a_bad_field_is_named_with_its_message_and_nothing_is_created(app, db, tab, change, field, reason, lang):
    before = counts(db)
    response = submit(tab, {**WALK_IN, **change}, lang=lang)
    assert response.status_code == 400
    body = response.get_json()
    assert body["reason"] == "invalid_form"
    assert body["errors"][field] == {"reason": reason, "message": message(reason, lang, app)}
    assert counts(db) == before


def test_every_bad_field_is_reported_at_once(db, tab):
    body = submit(tab, {**WALK_IN, "first_name": " ", "phone": "abc", "national_id": "123", "pdpa": ""}).get_json()
    assert set(body["errors"]) == {"first_name", "phone", "national_id", "pdpa"}
    assert counts(db)[0] == 4


def test_zero_width_and_decomposed_thai_are_stored_as_nfc(db, tab):
    # a zero-width space, sara am typed as nikhahit + tone + aa, the tone typed before the vowel below
    typed = "น\u200b\u0e4d\u0e49\u0e32" + "ผ\u0e49\u0e39"
    response = submit(tab, {**WALK_IN, "first_name": typed, "phone": "0811112222"})
    assert response.status_code == 200, response.get_json()
    stored = db.execute("select first_name from participants where phone = '0811112222'").fetchone()[0]
    assert stored == "น้ำผู้" and unicodedata.is_normalized("NFC", stored)


@pytest.mark.parametrize("lang", ["th", "en"])
def test_a_double_submit_creates_one_person_and_one_badge(db, tab, lang):
    before = counts(db)
    first = submit(tab, WALK_IN, lang=lang).get_json()
    again = submit(tab, WALK_IN, lang=lang).get_json()
    assert (first["status"], first["replayed"], again["replayed"]) == ("created", False, True)
    assert again["badge"]["code"] == first["badge"]["code"]
    people, badges, changes, keys = counts(db)
    assert (people, badges, keys) == (before[0] + 1, before[1] + 1, before[3] + 1)
    assert changes == before[2] + 2  # the person and the badge, once


def test_a_saved_form_sent_twice_later_keeps_its_time_and_creates_one_person(db, tab):
    made = "2020-01-01T00:00:00Z"
    refused = submit(tab, WALK_IN, deferred=True, made_at=made).get_json()
    assert refused["reason"] == "bad_time"  # older than the cohort allows
    from datetime import timedelta

    from kiosk.clock import iso, now_utc
    made = iso(now_utc() - timedelta(minutes=7))
    for _ in range(2):
        body = submit(tab, WALK_IN, key="offline-key-000001", deferred=True, made_at=made).get_json()
        assert body["ok"] and body["made_at"] == made
    assert db.execute("select count(*), max(created_at) from participants where first_name = 'สมศรี'").fetchone() == (1, made)
    future = iso(now_utc() + timedelta(hours=1))
    assert submit(tab, WALK_IN, key="offline-key-000002", deferred=True, made_at=future).get_json()["reason"] == "bad_time"


@pytest.mark.parametrize("change, match", [
    ({"phone": "0811110001", "first_name": "ใหม่", "last_name": "คนละคน"}, "phone"),
    ({"first_name": "สมหญิง", "last_name": "ใจดี", "phone": "0800000000", "subdistrict": ""}, "name"),
])
def test_the_same_phone_or_a_similar_name_in_the_district_asks_is_this_you(db, tab, venue, change, match):
    before = counts(db)
    body = submit(tab, {**WALK_IN, **change}).get_json()
    assert body["reason"] == "possible_duplicate" and counts(db) == before
    assert [m["match"] for m in body["matches"]] == [match]
    shown = body["matches"][0]
    assert set(shown) == {"initials", "phone_tail", "match", "ref"} and shown["initials"] == "ส. จ."
    taken = tab.post("/register/claim", json={"key": "c" * 20, "ref": shown["ref"]}).get_json()
    assert taken["status"] == "existing" and taken["badge"]["code"] == venue["people"][0]["code"]
    assert counts(db)[:3] == before[:3]
    new = submit(tab, {**WALK_IN, **change}, key="n" * 20, confirm_new=True).get_json()
    assert new["status"] == "created" and counts(db)[0] == before[0] + 1


def test_the_same_national_id_cannot_register_twice(db, tab):
    assert submit(tab, {**WALK_IN, "national_id": VALID_NID}).get_json()["status"] == "created"
    body = submit(tab, {**WALK_IN, "national_id": VALID_NID, "phone": "0822222222", "first_name": "อื่น"},
                  key="x" * 20, confirm_new=True).get_json()
    assert body["reason"] == "national_id_taken" and body["matches"][0]["match"] == "national_id"


def test_a_choice_of_another_tablet_or_a_forged_one_is_refused(db, tab):
    assert tab.post("/register/claim", json={"key": "c" * 20, "ref": "forged"}).get_json()["reason"] == "choice_expired"


@pytest.mark.parametrize("typed, held", [
    (("ผู้ใหญ่", "ศรีสุข"), ("ผู้ใหญ่", "ศรีสุข")),   # tone mark and vowel in another order
    (("สมศักดิ", "ใจดี"), ("สมศักดิ์", "ใจดี")),      # a missing ์
    (("สมศักดิ์ ", "ใจ ดี"), ("สมศักดิ์", "ใจดี")),   # spaces
])
def test_similar_thai_names_are_the_same_spelling(typed, held):
    assert similar_names(*typed, *held)


def test_different_people_are_not_similar():
    assert not similar_names("สมชาย", "ศรีสุข", "สมหญิง", "ศรีสุข")
    assert name_key("กิ่ง") == name_key("กิ่ง")


@pytest.mark.parametrize("mode, status", [("refuse", 409), ("waitlist", 200)])
def test_a_full_cohort_refuses_or_takes_a_waiting_list(coordinator, db, tab, venue, mode, status):
    events.add_target(db, venue["program_id"], 4, cohort_id=venue["cohort_id"])
    tablets.save_settings(db, venue["cohort_id"], mode, False, 60)
    before = counts(db)
    response = submit(tab, WALK_IN)
    assert response.status_code == status
    if mode == "refuse":
        assert response.get_json()["reason"] == "quota_full" and counts(db) == before
        return
    body = response.get_json()
    assert (body["status"], body["badge"]) == ("waiting", None)
    assert db.execute("select status, registered_via from participants where first_name = 'สมศรี'").fetchone() == (
        "waiting", "walk_in")
    page = coordinator.get(f"/cohorts/{venue['cohort_id']}").get_data(as_text=True)
    assert 'class="flag waiting"' in page and 'class="flag walkin"' in page


def test_registering_checks_in_at_once_when_the_coordinator_asked(db, tab, venue):
    tablets.save_settings(db, venue["cohort_id"], "refuse", True, 60)
    body = submit(tab, WALK_IN).get_json()
    assert body["checkin"]["status"] == "checked_in"
    again = submit(tab, WALK_IN).get_json()
    assert again["checkin"]["replayed"] is True
    assert db.execute("select count(*) from attendance").fetchone()[0] == 1


def test_a_tablet_is_rate_limited(app, db, tab):
    app.extensions.pop("register_limiter", None)
    app.config.update(REGISTER_PER_MINUTE=1, REGISTER_BURST=3)
    answers = [submit(tab, {**WALK_IN, "pdpa": ""}).status_code for _ in range(5)]
    assert answers == [400, 400, 400, 429, 429]


def test_a_large_body_is_refused_before_it_is_read(db, tab):
    response = tab.post("/register/submit", data="{" + " " * 20_000 + "}", content_type="application/json")
    assert (response.status_code, response.get_json()["reason"]) == (413, "payload_too_large")


def test_registration_needs_the_csrf_token(data_dir, db, tablet):
    app = create_app({"DATA_DIR": str(data_dir), "TESTING": True})
    browser = app.test_client()
    browser.set_cookie("kiosk_tablet", tablet["token"])
    response = browser.post("/register/submit", json={"key": "k" * 20, "fields": WALK_IN})
    assert (response.status_code, response.get_json()["reason"]) == (400, "csrf")
    assert counts(db)[0] == 4


def test_pages_carry_security_headers_and_personal_data_is_not_stored(tab):
    page = tab.get("/register")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in page.headers["Cache-Control"]
    assert "<script>" not in page.get_data(as_text=True)  # every script is a file
    assert "no-store" in submit(tab, WALK_IN).headers["Cache-Control"]
    assert "max-age" in tab.get("/register/areas.json").headers["Cache-Control"]


def test_the_badge_pdf_is_built_in_memory(data_dir, db, tab):
    before = sorted(p.name for p in data_dir.rglob("*"))
    url = submit(tab, WALK_IN).get_json()["badge"]["pdf_url"]
    for paper in ("", "&paper=a4"):
        response = tab.get(url + paper)
        assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    assert sorted(p.name for p in data_dir.rglob("*")) == before
    other = tab.get(url.replace("t=", "t=x"))
    assert other.status_code == 404


def test_pairing_is_one_time_and_revoking_frees_the_browser(app, db, venue, coordinator):
    paired = tablets.pair_tablet(db, venue["cohort_id"])
    browser = app.test_client()
    assert browser.get(f"/r/{paired['code']}").status_code == 302
    assert app.test_client().get(f"/r/{paired['code']}").status_code == 403  # used
    assert browser.get("/").status_code == 403
    tablet = tablets.tablets_of(db, venue["cohort_id"])[0]
    coordinator.post(f"/tablets/{tablet['id']}/revoke")
    assert browser.get("/register").status_code == 403  # the unpaired page
    assert browser.get("/").status_code == 302  # an ordinary logged-out browser: to the login


def test_a_late_scan_keeps_its_time_within_bounds(staff, db, venue):
    from datetime import timedelta

    from kiosk.clock import iso, now_utc

    code = venue["people"][0]["code"]
    future = staff.post("/api/checkins", json={"code": code, "at": iso(now_utc() + timedelta(hours=1)),
                                               "nonce": "n1", "queued": True})
    assert (future.status_code, future.get_json()["reason"]) == (400, "bad_time")
    old = staff.post("/api/checkins", json={"code": code, "at": "2020-01-01T03:00:00Z", "nonce": "n2",
                                            "queued": True})
    assert old.get_json()["reason"] == "bad_time"
    assert db.execute("select count(*) from scans").fetchone()[0] == 0
    made = iso(now_utc() - timedelta(minutes=3))
    for _ in range(2):
        body = staff.post("/api/checkins", json={"code": code, "at": made, "nonce": "n3", "queued": True}).get_json()
        assert body["status"] == "checked_in" and body["at"] == made
    assert db.execute("select count(*) from scans").fetchone()[0] == 1


def test_a_coordinator_admits_a_waiting_person_who_then_has_a_badge(coordinator, db, tab, venue):
    from kiosk.badges.issuing import active_badge

    events.add_target(db, venue["program_id"], 4, cohort_id=venue["cohort_id"])
    tablets.save_settings(db, venue["cohort_id"], "waitlist", False, 60)
    submit(tab, WALK_IN)
    person_id, status = db.execute("select id, status from participants where first_name = 'สมศรี'").fetchone()
    assert status == "waiting" and active_badge(db, person_id) is None
    page = coordinator.get(f"/participants/{person_id}").get_data(as_text=True)
    assert 'value="admit"' in page
    coordinator.post(f"/participants/{person_id}", data={"action": "admit"})
    assert db.execute("select status from participants where id = ?", [person_id]).fetchone()[0] == "active"
    assert active_badge(db, person_id) is not None
    before = db.execute("select count(*) from changes").fetchone()[0]
    coordinator.post(f"/participants/{person_id}", data={"action": "admit"})  # not waiting any more
    assert db.execute("select count(*) from changes").fetchone()[0] == before
