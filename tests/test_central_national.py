"""The national dashboard counts what the reports count, at every level (country, province,
district; cohort, session, role), against targets, with its map and downloads; and a broadcast
session's rooms are counted apart, each as its kiosk catches up."""

import io
import re
from datetime import date

import openpyxl
import pytest

from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.reports import attendance as att
from kiosk.reports.sources import kiosk_dataset
from kiosk.store import changes
from kiosk.store.db import transaction
from sync.central import create_app, national, rooms
from sync.central.national import View
from sync.central.storage import Storage

from scenarios import bangkok, corrections_day
from scenarios import national as national_course
from support import Kiosk, push_all


@pytest.fixture
def central(db, central_db_url):
    """Central holding the Bangkok cohort and the national course of one kiosk."""
    made = {"bangkok": bangkok(db), "national": national_course(db)}
    storage = Storage(central_db_url)
    for scenario in made.values():
        push_all(db, storage, scenario["program_id"], scenario["key"])
    yield storage, made
    storage.close()


def _counts(rows, key="code") -> dict:
    return {r[key]: (r["registered"], r["attended"]) for r in rows}


def test_every_level_counts_what_the_reports_count(db, central):
    storage, made = central
    pid = made["bangkok"]["program_id"]
    data = kiosk_dataset(db, pid)
    everyone = national.dashboard(storage, View(pid))
    totals = att.totals(data)
    assert (everyone["headline"]["registered"], everyone["headline"]["attended"]) == (
        totals["registered"], totals["attended"])
    assert everyone["headline"]["target"] == 200  # the role targets (180 + 6 + 14): the program's own
    assert _counts(everyone["roles"], "role") == {r["role"]: (r["registered"], r["attended"]) for r in att.by_role(data)}
    participants = national.dashboard(storage, View(pid, role="participant"))
    assert _counts(participants["areas"]) == {r["area_code"]: (r["registered"], r["attended"])
                                              for r in att.by_area(data, "province")}
    bkk = national.dashboard(storage, View(pid, area="10", role="participant"))
    assert bkk["headline"]["target"] == 8 * 22  # no target names Bangkok: its districts' add up
    assert _counts(bkk["areas"]) == {r["area_code"]: (r["registered"], r["attended"])
                                     for r in att.by_area(data.restricted(province_code="10"), "district")}
    assert {r["code"]: r["target"] for r in bkk["areas"]} == {r["area_code"]: r["target"]
                                                              for r in att.by_area(data, "district")}
    for row in att.by_session(data):
        one = national.dashboard(storage, View(pid, cohort_id=made["bangkok"]["cohort_id"],
                                               session_id=row["session_id"]))
        assert (one["headline"]["registered"], one["headline"]["attended"]) == (row["expected"], row["present"])
    assert len(everyone["map"]) == 77 and len({(t["col"], t["row"]) for t in everyone["map"]}) == 77
    assert [t["bucket"] for t in everyone["map"] if t["code"] == "10"] == [4]  # 184 came of a 176 target


def test_the_national_course_fills_the_map_one_square_per_province(db, central):
    storage, made = central
    page = national.dashboard(storage, View(made["national"]["program_id"]))
    squares = {t["code"]: t for t in page["map"]}
    assert len(squares) == 77 and all(t["registered"] == 2 for t in squares.values())
    assert squares["50"]["abbr"] == "ชม" and squares["10"]["abbr"] == "กทม"


def _client(storage, tmp_path):
    app = create_app({"CENTRAL_DATA": str(tmp_path / "web"), "CENTRAL_DATABASE": storage.url, "TESTING": True,
                      "WTF_CSRF_ENABLED": False})
    app.extensions["central_storage"].add_user("office", "password123")
    client = app.test_client()
    assert client.get("/national/x").status_code == 302  # coordinators only
    client.post("/login", data={"username": "office", "password": "password123"})
    return client


def test_the_pages_link_each_level_to_the_next_and_download_what_they_show(db, central, tmp_path):
    storage, made = central
    pid = made["bangkok"]["program_id"]
    client = _client(storage, tmp_path)
    home = client.get("/").get_data(as_text=True)
    assert f"/national/{pid}" in home and "โครงการฝึกอบรมวิทยากรกระบวนการระดับจังหวัด" in home
    country = client.get(f"/national/{pid}").get_data(as_text=True)
    assert country.count('<li class="c') == 77 and f'href="/national/{pid}?area=10"' in country
    province = client.get(f"/national/{pid}?area=10").get_data(as_text=True)
    assert f'href="/national/{pid}?area=1026"' in province and "เขตดินแดง" in province
    district = client.get(f"/national/{pid}?area=1026&cohort=1").get_data(as_text=True)
    assert "?area=1026&amp;cohort=1&amp;session=" in district  # the cohort's sessions, keeping the area
    shown = client.get(f"/national/{pid}/table.csv?area=10").get_data(as_text=True)
    assert "กรุงเทพมหานคร,200,184,176,104.5" in shown and "เขตดินแดง" in shown
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/national/{pid}/people.xlsx?area=10&role=participant").data))
    sheet = book["รายบุคคล"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 180 and sheet.cell(1, 10).value == "ช่วงที่ 1"
    assert sum(r[-2] for r in rows) == sum(1 for a in kiosk_dataset(db, pid).attendance
                                           if a["participant_id"] in {p["id"] for p in made["bangkok"]["people"]
                                                                      if p["role"] == "participant"})
    for bad in ("?area=1x", "?area=123", "?role=boss", "?cohort=9", "?session=nope"):
        assert client.get(f"/national/{pid}{bad}").status_code == 404, bad


def _broadcast(kiosk: Kiosk) -> dict:
    """One cohort from Chai Nat (18) and Sing Buri (17) following one session by video conference."""
    pid = events.create_program(kiosk.db, "ประชุมเครือข่ายผ่านระบบประชุมทางไกล", "สำนักงานพัฒนาสังคมจังหวัด", 2570)
    cohort_id = events.add_cohort(kiosk.db, pid, 1, date(2026, 3, 1), 1)
    cohort = events.cohort_by_id(kiosk.db, cohort_id)
    with transaction(kiosk.db):
        people = {code: [register_participant(kiosk.db, cohort, {
            "first_name": f"สมาชิก{code}-{n}", "last_name": "เครือข่าย", "province": name}, issue_badge=False)["id"]
            for n in range(size)] for code, name, size in (("18", "ชัยนาท", 13), ("17", "สิงห์บุรี", 8))}
    return {"program_id": pid, "cohort_id": cohort_id, "session_id": events.sessions(kiosk.db, cohort_id)[0]["id"],
            "people": people}


def _room_of(storage, kiosk: Kiosk, name: str, area: str) -> None:
    origin = kiosk.device_id
    device = storage.enrol(storage.create_enrol_code(name), origin=origin,
                           public_key=changes.own_public_key(kiosk.db))
    storage.set_room(device["device_id"], name, area)


def test_a_broadcast_session_counts_each_room_against_its_people_as_each_kiosk_catches_up(tmp_path):
    chainat, singburi = Kiosk(tmp_path / "chainat"), Kiosk(tmp_path / "singburi")
    made = _broadcast(chainat)
    pid, session = made["program_id"], made["session_id"]
    batch, _ = changes.batch_since(chainat.db, pid, {}, 10_000)
    with transaction(singburi.db):  # the second room's kiosk got the program before the day (a sync)
        changes.remember_keys(singburi.db, changes.keys_for(chainat.db, [chainat.device_id]))
        changes.apply_received(singburi.db, pid, batch)
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    _room_of(storage, chainat, "ห้องประชุม สนง.พมจ.ชัยนาท", "18")
    _room_of(storage, singburi, "ห้องประชุม สนง.พมจ.สิงห์บุรี", "17")
    program = {"program_id": pid}
    for person in made["people"]["18"][:11]:
        chainat.scan(program, person, session)
    for person in made["people"]["17"][:6]:
        singburi.scan(program, person, session)
    push_all(chainat.db, storage, pid)  # Sing Buri's kiosk is offline: its room shows nobody yet
    found = rooms.live_rooms(storage, pid, national.session_of(storage, pid, session))
    assert [(r["room"], r["present"], r["expected"]) for r in found["rooms"]] == [
        ("ห้องประชุม สนง.พมจ.ชัยนาท", 11, 13), ("ห้องประชุม สนง.พมจ.สิงห์บุรี", 0, 8)]
    push_all(singburi.db, storage, pid)  # it comes back online and catches up
    client = _client(storage, tmp_path)
    live = client.get(f"/live/{pid}/{session}.json").get_json()
    assert [(r["room"], r["present"], r["expected"]) for r in live["rooms"]] == [
        ("ห้องประชุม สนง.พมจ.ชัยนาท", 11, 13), ("ห้องประชุม สนง.พมจ.สิงห์บุรี", 6, 8)]
    assert (live["present"], live["expected"]) == (17, 21)
    page = client.get(f"/live/{pid}/{session}").get_data(as_text=True)
    assert "ห้องประชุม สนง.พมจ.สิงห์บุรี" in page and re.search(r'data-source="/live/[^"]+\.json"', page)
    for kiosk in (chainat, singburi):
        kiosk.close()
    storage.close()


def test_pages_that_list_every_person_ask_for_a_cohort_or_province_above_the_limit(db, central, tmp_path,
                                                                                  monkeypatch):
    from kiosk.webkit import report_views

    storage, made = central
    pid = made["bangkok"]["program_id"]
    client = _client(storage, tmp_path)
    monkeypatch.setattr(report_views, "PERSON_LIMIT", 150)  # Bangkok's cohort has 200: a national program a million
    for page in ("grid", "certificates", "allowances", "progress", "report.xlsx"):
        refused = client.get(f"/reports/{pid}/{page}?province=10")
        assert refused.status_code == 302 and refused.location.endswith(f"/reports/{pid}?province=10"), page
    assert "200" in client.get(f"/reports/{pid}?province=10").get_data(as_text=True)  # the counts still show
    monkeypatch.setattr(report_views, "PERSON_LIMIT", 1000)
    assert client.get(f"/reports/{pid}/grid?province=10").status_code == 200


def _dashboard_counts(storage, pid: str, cohort_id: str) -> dict:
    page = national.dashboard(storage, View(pid))
    one = national.dashboard(storage, View(pid, cohort_id=cohort_id))
    return {"headline": (page["headline"]["registered"], page["headline"]["attended"]),
            "roles": _counts(page["roles"], "role"),
            "areas": _counts(national.dashboard(storage, View(pid, role="participant"))["areas"]),
            "sessions": {r["id"]: r["attended"] for r in one["sessions"]}}


def _report_counts(data, cohort_id: str) -> dict:
    totals = att.totals(data)
    return {"headline": (totals["registered"], totals["attended"]),
            "roles": {r["role"]: (r["registered"], r["attended"]) for r in att.by_role(data)},
            "areas": {r["area_code"]: (r["registered"], r["attended"]) for r in att.by_area(data, "province")},
            "sessions": {r["session_id"]: r["present"] for r in att.by_session(data.restricted(cohort_id))}}


def test_a_removed_session_counts_nowhere_on_the_dashboard_until_restored(db, central_db_url):
    made = corrections_day(db)
    pid, cohort, removed = made["program_id"], made["cohort_id"], made["removed"]
    storage = Storage(central_db_url)
    push_all(db, storage, pid)
    came = {}
    for step in ("removed", "restored", "removed again"):
        if step != "removed":
            (events.restore_session if step == "restored" else events.remove_session)(db, removed)
            push_all(db, storage, pid)
        found, expected = _dashboard_counts(storage, pid, cohort), _report_counts(kiosk_dataset(db, pid), cohort)
        assert found == expected, step
        assert (removed in found["sessions"]) == (step == "restored")
        came[step] = found["headline"][1]
        with storage.write() as conn:  # what each push kept is what counting again from the rows gives
            kept = sorted(tuple(r) for r in conn.exec_driver_sql("select * from area_counts"))
            storage.rebuild_counts(conn, pid)
            assert sorted(tuple(r) for r in conn.exec_driver_sql("select * from area_counts")) == kept, step
    assert came["removed"] == came["removed again"] == came["restored"] - 1  # who came only that day
    storage.close()
