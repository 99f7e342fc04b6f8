"""The same numbers on the kiosk and on the central server (SQLite and PostgreSQL) after a sync,
and the central report pages, downloads, commands and certificate check."""

import io
import subprocess
import sys

import openpyxl
import pytest

from kiosk.badges.codes import certificate_code
from kiosk.reports import aggregates
from kiosk.reports import attendance as att
from kiosk.reports.certificates import eligibility, parse_rule
from kiosk.reports.sources import kiosk_dataset, kiosk_reader
from sync.central import create_app
from sync.central.reports import central_dataset, central_reader
from sync.central.storage import Storage
from sync.client import sync_once

from scenarios import bangkok, corrections_day, national
from support import ROOT, Kiosk, enrol, push_all


def numbers(data) -> dict:
    """Every report's numbers, in a shape both servers must give alike."""
    rule = parse_rule(data.program.get("certificate_rule"))
    return {
        "totals": att.totals(data), "sessions": att.by_session(data), "days": att.by_day(data),
        "roles": att.by_role(data), "districts": att.by_area(data, "district"),
        "provinces": att.by_area(data, "province"),
        "targets": [(t.get("cohort"), t.get("role"), t.get("area_code"), t["expected"], t["attended"], t["percent"])
                    for t in att.against_targets(data)],
        "grid": [(r["id"], r["marks"], r["attended"]) for r in att.grid(data)["rows"]],
        "certificates": [(r["id"], r["eligible"], r["attended"]) for r in eligibility(data, rule)],
    }


@pytest.fixture
def synced(tmp_path, central):
    kiosk = Kiosk(tmp_path / "venue")
    scenarios = {"bangkok": bangkok(kiosk.db), "national": national(kiosk.db)}
    enrol(kiosk, central.url, central.storage())
    sync_once(kiosk.data_dir)
    yield kiosk, scenarios, central
    kiosk.close()


def test_kiosk_and_central_give_the_same_numbers_after_a_sync(synced):
    kiosk, scenarios, server = synced
    storage = server.storage()
    for name, scenario in scenarios.items():
        on_kiosk = kiosk_dataset(kiosk.db, scenario["program_id"])
        on_central = central_dataset(storage, scenario["program_id"])
        assert numbers(on_kiosk) == numbers(on_central), name
        assert numbers(on_kiosk.restricted(scenario["cohort_id"], "10")) == numbers(
            central_dataset(storage, scenario["program_id"], 1, "10")), name
    paper = att.totals(central_dataset(storage, scenarios["bangkok"]["program_id"]))["paper"]
    assert paper == sum(1 for i in range(200) if i % 10 == 0 and i % 4 != 3)
    storage.close()


def counted(reader, program_id, cohort_id=None, province=None) -> dict:
    """The SQL aggregates' numbers in the shape `numbers` gives from a Dataset."""
    selection = aggregates.Selection(program_id, cohort_id, province)
    found = aggregates.summary(reader, selection)
    return {"totals": found["totals"], "sessions": found["sessions"], "days": found["days"], "roles": found["roles"],
            "districts": aggregates.summary(reader, selection, "district")["areas"],
            "provinces": aggregates.summary(reader, selection, "province")["areas"],
            "targets": [(t["cohort"], t["role"], t["area_code"], t["expected"], t["attended"], t["percent"])
                        for t in found["targets"]]}


def test_the_database_counts_what_the_reports_count_on_kiosk_and_central(synced):
    kiosk, scenarios, server = synced
    storage = server.storage()
    for name, scenario in scenarios.items():
        pid, cohort = scenario["program_id"], scenario["cohort_id"]
        from_rows = {k: v for k, v in numbers(kiosk_dataset(kiosk.db, pid)).items()
                     if k not in ("grid", "certificates")}
        assert counted(kiosk_reader(kiosk.db), pid) == from_rows, name
        assert counted(central_reader(storage), pid) == from_rows, name
        cut = {k: v for k, v in numbers(kiosk_dataset(kiosk.db, pid).restricted(cohort, "10")).items()
               if k not in ("grid", "certificates")}
        assert counted(kiosk_reader(kiosk.db), pid, cohort, "10") == cut, name
        assert counted(central_reader(storage), pid, cohort, "10") == cut, name
    storage.close()


def test_central_pages_downloads_and_certificate_check(synced, tmp_path):
    kiosk, scenarios, server = synced
    app = create_app({"CENTRAL_DATA": str(tmp_path / "web"), "CENTRAL_DATABASE": server.db_url, "TESTING": True,
                      "WTF_CSRF_ENABLED": False})
    storage = app.extensions["central_storage"]
    storage.add_user("office", "password123")
    client = app.test_client()
    nat = scenarios["national"]
    code = certificate_code(nat["program_id"], nat["people"][1]["id"], nat["key"])
    public = client.get(f"/verify/{code}")
    assert public.status_code == 200
    page = public.get_data(as_text=True)
    assert nat["people"][1]["first_name"] in page and "2562" in page
    assert nat["people"][1]["organization"] not in page and "นักวิชาการ" not in page
    assert client.get("/verify/" + code[:-1] + ("A" if code[-1] != "A" else "B")).status_code == 404
    assert client.get(f"/reports/{nat['program_id']}").status_code == 302  # coordinators only
    client.post("/login", data={"username": "office", "password": "password123"})
    html = client.get(f"/reports/{nat['program_id']}?cohort=1&province=10").get_data(as_text=True)
    assert "<svg" in html and "กรุงเทพมหานคร" in html
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/reports/{nat['program_id']}/report.xlsx").data))
    assert len(list(book["รายบุคคล"].iter_rows())) == 155
    saved = client.post(f"/reports/{nat['program_id']}/progress", data={
        "period": "2562-03", "problems": "ผู้เข้าอบรมเดินทางไกล", "obstacles": "งบประมาณล่าช้า"})
    assert saved.status_code == 302
    progress = client.get(f"/reports/{nat['program_id']}/progress").get_data(as_text=True)
    assert "มีนาคม 2562" in progress and "งบประมาณล่าช้า" in progress
    storage.close()


def test_kiosk_central_report_command(synced, tmp_path):
    _, scenarios, server = synced
    out = tmp_path / "bangkok.xlsx"
    done = subprocess.run([sys.executable, "-m", "sync.central", "--data", str(tmp_path / "c"), "--db", server.db_url,
                           "report", "--program", scenarios["bangkok"]["program_id"], "--cohort", "1",
                           "--format", "xlsx", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = list(openpyxl.load_workbook(out)["รายช่วง"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == 2


def test_the_database_counts_corrections_removed_and_coming_sessions_as_the_reports(db, central_db_url):
    made = corrections_day(db)
    pid, cohort = made["program_id"], made["cohort_id"]
    storage = Storage(central_db_url)
    push_all(db, storage, pid)
    data = kiosk_dataset(db, pid)
    assert {r["session_id"]: r["upcoming"] for r in att.by_session(data)}[made["tomorrow"]["id"]]
    assert att.totals(data)["manual"] == 1 and len(att.corrections(data)) == 2
    assert numbers(central_dataset(storage, pid)) == numbers(data)
    for selected in ((None, None), (cohort, None), (cohort, "10"), (None, "50")):
        from_rows = data.restricted(*selected) if any(selected) else data
        expected = {k: v for k, v in numbers(from_rows).items() if k not in ("grid", "certificates")}
        for reader in (kiosk_reader(db), central_reader(storage)):
            assert counted(reader, pid, *selected) == expected, selected
            found = aggregates.summary(reader, aggregates.Selection(pid, *selected), "subdistrict")
            assert found["areas"] == att.by_area(from_rows, "subdistrict")
            assert found["corrections"] == att.corrections(from_rows)
            assert aggregates.summary(reader, aggregates.Selection(pid, *selected))["area_level"] == \
                att.default_level(from_rows)
    storage.close()


def test_central_shows_who_corrected_attendance_by_hand_and_why(db, central_db_url, tmp_path):
    pid = corrections_day(db)["program_id"]
    app = create_app({"CENTRAL_DATA": str(tmp_path / "web"), "CENTRAL_DATABASE": central_db_url, "TESTING": True,
                      "WTF_CSRF_ENABLED": False})
    storage = app.extensions["central_storage"]
    push_all(db, storage, pid)
    storage.add_user("office", "password123")
    client = app.test_client()
    client.post("/login", data={"username": "office", "password": "password123"})
    page = client.get(f"/reports/{pid}?level=subdistrict").get_data(as_text=True)
    corrections = page[page.index('id="corrections"'):]
    assert corrections.count("หัวหน้าศูนย์") == 2 and "บัตรของคนอื่น" in corrections and "ลืมบัตร" in corrections
    assert "วชิรพยาบาล" in page[page.index('id="per-area"'):page.index('id="targets"')]
    storage.close()
