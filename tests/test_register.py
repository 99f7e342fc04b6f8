"""Self-registration through the Flask client and the domain: bad input, duplicates, quotas, keys, fences."""

import json
import unicodedata

import pytest
from flask_babel import force_locale, gettext

from kiosk import create_app
from kiosk.errors import message_of
from kiosk.people import tablets
from kiosk.program import events
from kiosk.thai import name_key, similar_names

from support import tablet_client

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
    contact = tab.post("/register/contact", json={}).get_json()
    seen = "2020-01-01T00:00:00Z"  # the tablet's clock is years off: only the time it counted matters
    for _ in range(2):
        body = submit(tab, WALK_IN, key="offline-key-000001", deferred=True, made_at=seen,
                      contact=contact["contact"], contact_seen_at=seen).get_json()
        assert body["ok"] and body["made_at"] == contact["server_time"]
    assert db.execute("select count(*), max(created_at) from participants where first_name = 'สมศรี'").fetchone() == (
        1, contact["server_time"])


@pytest.mark.parametrize("change, match", [
    ({"phone": "0811110001", "first_name": "ใหม่", "last_name": "คนละคน"}, "phone"),
    ({"first_name": "สมหญิง", "last_name": "ใจดี", "phone": "0800000000", "subdistrict": ""}, "name"),
])
def test_the_same_phone_or_a_similar_name_in_the_district_asks_and_not_me_registers_anew(db, tab, venue, change,
                                                                                          match):
    before = counts(db)
    body = submit(tab, {**WALK_IN, **change}).get_json()
    assert body["reason"] == "possible_duplicate" and counts(db) == before
    assert body["matches"] == [match]
    new = submit(tab, {**WALK_IN, **change}, key="n" * 20, confirm_new=True).get_json()
    assert new["status"] == "created" and counts(db)[0] == before[0] + 1
    assert new["badge"]["code"] != venue["people"][0]["code"]


def test_the_same_national_id_cannot_register_twice(db, tab):
    assert submit(tab, {**WALK_IN, "national_id": VALID_NID}).get_json()["status"] == "created"
    body = submit(tab, {**WALK_IN, "national_id": VALID_NID, "phone": "0822222222", "first_name": "อื่น"},
                  key="x" * 20, confirm_new=True).get_json()
    assert body["reason"] == "national_id_taken" and body["matches"] == ["national_id"]


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
    tablets.save_settings(db, venue["cohort_id"], mode, False, 60, capacity=4)
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


# --- when a cohort is full (issue 22, point 1) ----------------------------------------------------

def test_walk_ins_are_welcome_while_the_roster_is_complete_but_nobody_has_arrived(db, tab, venue):
    events.add_target(db, venue["program_id"], 4, cohort_id=venue["cohort_id"])  # 4 registered, 4 expected
    page = tab.get("/register?lang=en").get_data(as_text=True)
    assert 'id="step-full" class="step" hidden' in page
    body = submit(tab, WALK_IN).get_json()
    assert body["status"] == "created" and body["badge"]


def test_a_cohort_is_full_once_its_target_has_arrived(db, tab, venue):
    from kiosk.door.checkin import check_in
    events.add_target(db, venue["program_id"], 2, cohort_id=venue["cohort_id"], role="participant")
    for person in venue["people"][:2]:  # the two participants arrive
        check_in(db, person["code"])
    state = tab.post("/register/contact", json={}).get_json()["walk_ins"]
    assert state == {"full": True, "why": "attendance", "mode": "refuse"}
    page = tab.get("/register?lang=en").get_data(as_text=True)
    assert 'id="step-full" class="step">' in page and 'id="step-form" class="step" hidden' in page
    assert "Please speak to the staff at the registration desk" in page
    refused = submit(tab, WALK_IN).get_json()
    assert refused["reason"] == "quota_full"


def test_the_coordinator_sets_a_capacity_and_a_waiting_list(coordinator, db, tab, venue):
    coordinator.post(f"/cohorts/{venue['cohort_id']}/registration-settings",
                     data={"quota_mode": "waitlist", "idle_seconds": "60", "capacity": "4"})
    assert tablets.settings_of(db, venue["cohort_id"])["capacity"] == 4
    page = tab.get("/register?lang=en").get_data(as_text=True)
    assert 'id="full-note" class="full-note" role="status">' in page and 'id="step-form" class="step">' in page
    assert submit(tab, WALK_IN).get_json()["status"] == "waiting"
    answer = coordinator.post(f"/cohorts/{venue['cohort_id']}/registration-settings?lang=en",
                              data={"quota_mode": "waitlist", "idle_seconds": "60", "capacity": "-3"},
                              follow_redirects=True)
    assert "capacity" in answer.get_data(as_text=True).lower()
    assert tablets.settings_of(db, venue["cohort_id"])["capacity"] == 4


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

    tablets.save_settings(db, venue["cohort_id"], "waitlist", False, 60, capacity=4)
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


# --- a stranger at the tablet (issue 20: findings 1, 2, 4) --------------------------------------
# What "is this you?" may answer: which of the typed facts match someone, nothing of that someone.
MATCH_ANSWER_KEYS = {"ok", "reason", "error", "matches"}


@pytest.fixture
def other_tablet(app, db, venue):
    """A tablet paired for the program's other cohort."""
    return tablet_client(app, db, venue["cohort2_id"], "B")


@pytest.fixture
def victim(db, venue):
    """A registered person with a national ID, a phone and a badge, who has not arrived."""
    from kiosk.people.participants import register_participant
    cohort = events.cohort_by_id(db, venue["cohort_id"])
    return register_participant(db, cohort, {"title": "นาง", "first_name": "มาลี", "last_name": "ทองคำ",
                                             "province": "กรุงเทพมหานคร", "district": "ดินแดง",
                                             "phone": "0865550101", "national_id": VALID_NID})


def attempts(victim):
    """What a stranger can type about the victim: the phone, the national ID, a similar name."""
    return {"phone": {**WALK_IN, "phone": victim["phone"]},
            "national_id": {**WALK_IN, "national_id": VALID_NID, "phone": "0800000001"},
            "name": {**WALK_IN, "first_name": "มาลี", "last_name": "ทองคำ ", "phone": "0800000002",
                     "district": "1026", "subdistrict": ""}}


def leaked(answer, victim) -> list[str]:
    """Whatever of the victim an answer holds that the stranger did not type."""
    text = json.dumps(answer, ensure_ascii=False)
    secrets_of = {"badge code": victim["code"], "last name": "ทองคำ", "initials": "ม. ท.",
                  "phone tail": victim["phone"][-4:], "id tail": VALID_NID[-4:], "id": victim["id"]}
    return [what for what, value in secrets_of.items() if value in text]


@pytest.mark.parametrize("kind", ["phone", "national_id", "name"])
@pytest.mark.parametrize("which", ["same cohort", "other cohort"])
def test_a_stranger_typing_someones_details_gets_no_name_badge_or_qr(db, tab, other_tablet, victim, kind, which):
    tablets.save_settings(db, victim["cohort_id"], "refuse", True, 60)  # registering checks in
    browser = tab if which == "same cohort" else other_tablet
    typed = attempts(victim)[kind]
    answer = submit(browser, typed, key="stranger-key-0001").get_json()
    assert answer["reason"] in ("possible_duplicate", "national_id_taken")
    assert set(answer) == MATCH_ANSWER_KEYS and answer["matches"] == [kind]
    if kind != "name":  # the name is the one fact the stranger typed that the answer may echo
        assert leaked(answer, victim) == [], answer
    for ref in ("forged", answer.get("ref"), *(m for m in answer["matches"] if isinstance(m, str))):
        claimed = browser.post("/register/claim", json={"key": "claim-key-000001", "ref": ref})
        assert claimed.status_code in (403, 404) and leaked(claimed.get_json(), victim) == []
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0  # finding 2
    after_reissue = submit(browser, typed, key="stranger-key-0002").get_json()
    assert after_reissue["reason"] == answer["reason"]


def test_saying_not_me_registers_a_new_person_never_the_existing_one(db, tab, victim):
    typed = attempts(victim)["phone"]
    assert submit(tab, typed).get_json()["reason"] == "possible_duplicate"
    body = submit(tab, typed, key="n" * 20, confirm_new=True).get_json()
    assert body["status"] == "created" and body["badge"]["code"] != victim["code"]
    assert body["name"] == "นางสาวสมศรี มีสุข"


def test_a_national_id_oracle_answers_no_personal_data(db, tab, victim):
    answer = submit(tab, {**WALK_IN, "national_id": VALID_NID, "phone": "0800000003"}, confirm_new=True)
    body = answer.get_json()
    assert (answer.status_code, body["reason"]) == (409, "national_id_taken")
    assert set(body) == MATCH_ANSWER_KEYS and leaked(body, victim) == []


def test_a_tablet_that_keeps_finding_registered_people_pauses_until_resumed(coordinator, db, tab, victim):
    typed = attempts(victim)["phone"]
    for n in range(tablets.TABLET_LOOKUPS):
        assert submit(tab, typed, key=f"probe-key-{n:08d}").get_json()["reason"] in ("possible_duplicate",
                                                                                     "ask_at_desk")
    paused = submit(tab, {**WALK_IN, "phone": "0899990000"}, key="genuine-key-00001")
    assert (paused.status_code, paused.get_json()["reason"]) == (429, "tablet_paused")
    assert db.execute("select count(*) from participants where phone = '0899990000'").fetchone()[0] == 0
    tablet_id = db.execute("select id from tablets where cohort_id = ?", [victim["cohort_id"]]).fetchone()[0]
    assert "resume" in coordinator.get(f"/cohorts/{victim['cohort_id']}/tablets").get_data(as_text=True)
    coordinator.post(f"/tablets/{tablet_id}/resume")
    assert submit(tab, {**WALK_IN, "phone": "0899990000"}, key="genuine-key-00001").get_json()["status"] == "created"


def test_a_person_looked_up_again_and_again_is_sent_to_the_desk(db, tab, other_tablet, victim):
    typed = attempts(victim)["phone"]
    for n in range(tablets.PERSON_LOOKUPS):
        browser = tab if n % 2 else other_tablet
        assert submit(browser, typed, key=f"probe-key-{n:08d}").get_json()["reason"] == "possible_duplicate"
    before = counts(db)
    refused = submit(tab, typed, key="probe-key-new-0001", confirm_new=True)
    assert (refused.status_code, refused.get_json()["reason"]) == (409, "ask_at_desk")
    assert counts(db) == before


# --- roles a tablet offers (issue 20, finding 12) -----------------------------------------------

@pytest.mark.parametrize("role", ["speaker", "staff", "observer"])
def test_a_walk_in_cannot_choose_a_role_the_tablet_does_not_offer(db, tab, role):
    before = counts(db)
    response = submit(tab, {**WALK_IN, "role": role}, lang="en")
    body = response.get_json()
    assert (response.status_code, body["reason"]) == (400, "invalid_form")
    assert body["errors"]["role"]["reason"] == "role_not_offered"
    assert counts(db) == before
    assert f'value="{role}"' not in tab.get("/register").get_data(as_text=True)


def test_the_coordinator_offers_speakers_on_one_tablet_only(app, coordinator, db, tab, tablet, venue):
    page = coordinator.get(f"/cohorts/{venue['cohort_id']}/tablets").get_data(as_text=True)
    assert 'name="roles" value="speaker"' in page
    coordinator.post(f"/tablets/{tablet['id']}/roles", data={"roles": ["participant", "speaker"]})
    assert 'value="speaker"' in tab.get("/register").get_data(as_text=True)
    body = submit(tab, {**WALK_IN, "role": "speaker"}).get_json()
    assert body["status"] == "created" and body["badge"]["role"] == "speaker"
    other = tablet_client(app, db, venue["cohort_id"], "B")
    refused = submit(other, {**WALK_IN, "role": "speaker", "phone": "0898887777"}, key="o" * 20).get_json()
    assert refused["errors"]["role"]["reason"] == "role_not_offered"
    assert coordinator.post(f"/tablets/{tablet['id']}/roles", data={}).status_code == 302
    assert tablets.tablet_roles(tablets.tablets_of(db, venue["cohort_id"])[0]) == ("participant", "speaker")


def test_the_badge_pdf_link_holds_no_badge_code_and_stops_with_a_reissue(db, tab):
    import base64

    from kiosk.badges.issuing import reissue_badge
    body = submit(tab, WALK_IN).get_json()
    url, code = body["badge"]["pdf_url"], body["badge"]["code"]
    assert "ref" not in body["badge"]
    token = url.split("t=")[1].split(".")[0]
    assert code not in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()  # browser history
    assert tab.get(url).status_code == 200
    person_id = db.execute("select participant_id from badges where code = ?", [code]).fetchone()[0]
    reissue_badge(db, person_id)
    assert tab.get(url).status_code == 404


def test_a_walk_in_carries_the_notice_version_the_tablet_showed_and_a_new_text_is_a_new_version(db, tab, monkeypatch):
    from kiosk.people import privacy

    page = tab.get("/register").get_data(as_text=True)
    shown = privacy.current_notice_version()
    assert shown in page
    assert submit(tab, WALK_IN).get_json()["status"] == "created"
    row = db.execute("select consent_via, consent_notice, consent_at from participants where first_name = 'สมศรี'"
                     ).fetchone()
    assert row[0] == "tablet" and row[1] == shown and row[2]
    reworded = (*privacy.NOTICE[:-1], (privacy.NOTICE[-1][0], privacy.NOTICE[-1][1] + " "))
    monkeypatch.setattr(privacy, "NOTICE", reworded)
    assert privacy.current_notice_version() != shown
