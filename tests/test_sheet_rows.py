"""A signature sheet's row QR, as the holder of a printed sheet uses it: evidence of one person in one
session, never a badge.

The sheet is printed for real and its QR codes read back with zxing-cpp, as anyone holding the
paper could; the codes are then tried at the door as badges, for other sessions, and as the paper
record they are.
"""

import subprocess

import pytest
import zxingcpp
from PIL import Image

from kiosk.documents import papers
from kiosk.documents.sheets import sheet_rows
from kiosk.door.checkin import CheckinError, check_in
from kiosk.reports.sources import kiosk_dataset
from kiosk.trust.programkeys import badge_key


@pytest.fixture
def sheet_codes(tmp_path, db, open_event):
    """The row codes of today's first session's printed sheet, by whose row they are on."""
    event = open_event
    data = kiosk_dataset(db, event["program_id"], event["cohort_id"])
    out = tmp_path / "sheet.pdf"
    papers.sheet(data, event["sessions"][0], badge_key(db, event["program_id"]), out=out)
    subprocess.run(["pdftoppm", "-png", "-r", "300", "-f", "1", "-l", "1", "-singlefile", str(out),
                    str(tmp_path / "page")], check=True)
    found = {r.text for r in zxingcpp.read_barcodes(Image.open(tmp_path / "page.png"))}
    rows = {r.person["id"]: r.code for r in sheet_rows(data, event["sessions"][0], badge_key(db, event["program_id"]))
            if r.person}
    assert found == set(rows.values()) and len(found) == len(event["people"])
    return event, rows


def test_a_sheet_row_holds_no_badge_code(db, sheet_codes):
    event, rows = sheet_codes
    for person in event["people"]:
        row = rows[person["id"]]
        assert person["code"] not in row
        for start in range(len(row) - 19):  # no 20-character stretch of it checks in anybody
            with pytest.raises(CheckinError) as refused:
                check_in(db, row[start:start + 20])
            assert refused.value.reason in ("invalid_code", "wrong_program")
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0


def test_a_sheet_row_shown_at_the_door_is_refused_as_a_badge(db, sheet_codes):
    event, rows = sheet_codes
    row = rows[event["people"][0]["id"]]
    with pytest.raises(CheckinError) as refused:
        check_in(db, row)  # the session is open now: a badge would check in
    assert refused.value.reason == "paper_row_at_door"
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0
    assert db.execute("select result from scans").fetchall() == [("paper_row_at_door",)]


def test_a_sheet_row_records_its_own_session_and_no_other(db, sheet_codes):
    event, rows = sheet_codes
    person = event["people"][1]
    day1, day2 = event["sessions"][:2]
    with pytest.raises(CheckinError) as refused:
        check_in(db, rows[person["id"]], session_id=day2["id"], paper=True)
    assert refused.value.reason == "paper_other_session"
    result = check_in(db, rows[person["id"]], paper=True)
    assert (result.status, result.participant["id"], result.session["id"]) == ("checked_in", person["id"], day1["id"])
    assert db.execute("select via from scans where id = ?", [result.scan_id]).fetchone() == ("paper",)
    assert db.execute("select session_id from attendance").fetchall() == [(day1["id"],)]


def test_a_badge_is_no_sheet_row(db, open_event):
    with pytest.raises(CheckinError) as refused:
        check_in(db, open_event["people"][0]["code"], paper=True)
    assert refused.value.reason == "not_a_sheet_row"
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0


def test_the_door_page_refuses_a_sheet_row_unless_signed_sheets_are_chosen(staff, db, sheet_codes):
    event, rows = sheet_codes
    person = event["people"][0]
    at_door = staff.post("/api/checkins?lang=en", json={"code": rows[person["id"]], "nonce": "d1"})
    body = at_door.get_json()
    assert (at_door.status_code, body["reason"]) == (422, "paper_row_at_door")
    assert "not a badge" in body["error"]
    assert db.execute("select count(*) from attendance").fetchone()[0] == 0
    recorded = staff.post("/api/checkins", json={"code": rows[person["id"]], "paper": True, "nonce": "d2"}).get_json()
    assert (recorded["status"], recorded["participant"]["id"]) == ("checked_in", person["id"])
    for bad in ({"paper": "yes"}, {"paper": True, "direction": "out"}):
        answer = staff.post("/api/checkins", json={"code": rows[person["id"]], **bad})
        assert (answer.status_code, answer.get_json()["reason"]) == (400, "bad_request")
