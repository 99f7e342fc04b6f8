"""A coordinator's day in real Chromium against a real kiosk server: correcting a session's window
and a target (by keyboard), importing an Excel roster that Excel itself mangled, reading the sync
page before and after a real sync, and every page readable at 200 % zoom."""

import io
import re

import openpyxl
import pytest
from playwright.sync_api import expect

from kiosk.program import events
from kiosk.store.db import open_data_dir

from support import build_event, log_in

pytestmark = pytest.mark.browser
DESK = {"width": 1280, "height": 900}


@pytest.fixture
def day(data_dir, accounts, kiosk_server, chromium):
    """A kiosk serving an event (cohort 1 today and tomorrow), a coordinator logged in, in English."""
    db = open_data_dir(data_dir)
    event = build_event(db)
    db.close()
    server = kiosk_server()
    page = chromium().new_page(viewport=DESK)
    log_in(page, server, "chief", next_path="/", lang="en")
    return server, page, event


def _press_open(page, summary) -> None:
    """Opens a <details> by keyboard: focus its summary, press Enter."""
    summary.focus()
    page.keyboard.press("Enter")


def test_a_coordinator_fixes_a_wrong_session_window_by_keyboard(day):
    server, page, event = day
    page.goto(f"{server.url}/cohorts/{event['cohort_id']}")
    first = page.locator("#sessions ~ table tbody tr").first
    _press_open(page, first.locator("summary", has_text="Edit"))
    form = first.locator("form[action$='/edit']")
    form.locator("input[name=opens_at]").focus()
    page.keyboard.type("0830")  # a time field takes its digits from the keyboard
    form.locator("input[name=closes_at]").focus()
    page.keyboard.type("1630")
    page.keyboard.press("Enter")
    expect(page.locator(".flash.ok")).to_have_text("Session saved.")
    expect(page.locator("#sessions ~ table tbody tr").first).to_contain_text("08:30–16:30")
    # a session put over it is refused, the reason said at once (role=alert)
    page.locator("summary", has_text="Add a session").click()
    add = page.locator("form[action$='/sessions']")
    add.locator("input[name=day]").fill(event["sessions"][0]["day"])
    add.locator("select[name=slot]").select_option("morning")
    add.locator("button.primary").click()
    expect(page.locator("[role=alert]")).to_contain_text("overlap another session")
    expect(page.locator("[role=alert]")).to_contain_text("08:30–16:30")


def test_a_coordinator_fixes_a_wrong_target_and_removes_a_duplicate(day, data_dir):
    server, page, event = day
    db = open_data_dir(data_dir)
    wrong = events.add_target(db, event["program_id"], 15, event["cohort_id"], "participant",
                              area_codes=("10", "1002", ""))  # เขตดุสิต, meant ดินแดง
    db.close()
    page.goto(f"{server.url}/programs/{event['program_id']}")
    row = page.locator("#targets ~ table tbody tr", has_text="เขตดุสิต")
    _press_open(page, row.locator("summary", has_text="Edit"))
    form = row.locator(f"form[action='/targets/{wrong}/edit']")
    form.locator("input[name=expected]").fill("20")
    form.locator("select[name=district]").select_option("1026")
    subdistrict = form.locator("select[name=subdistrict]")
    expect(subdistrict.locator("option[value='102601']")).to_have_count(1)  # narrowed by static/js/areas.js
    subdistrict.select_option("102601")
    form.locator("button.primary").press("Enter")
    expect(page.locator(".flash.ok")).to_have_text("Target saved.")
    fixed = page.locator("#targets ~ table tbody tr", has_text="แขวงดินแดง เขตดินแดง กรุงเทพมหานคร")
    expect(fixed).to_contain_text("20")
    # the same target once more is refused; a duplicate made elsewhere can be removed
    page.locator("summary", has_text="Add a target").click()
    add = page.locator("form[action$='/targets']")
    add.locator("input[name=expected]").fill("20")
    add.locator("select[name=cohort_id]").select_option(event["cohort_id"])
    add.locator("select[name=role]").select_option("participant")
    add.locator("select[name=province]").select_option("10")
    add.locator("select[name=district]").select_option("1026")
    add.locator("select[name=subdistrict]").select_option("102601")
    add.locator("button.primary").click()
    expect(page.locator("[role=alert]")).to_contain_text("already exists")
    row = page.locator("#targets ~ table tbody tr", has_text="แขวงดินแดง")
    _press_open(page, row.locator("summary", has_text="Remove"))
    expect(row.locator("form[action$='/remove']")).to_contain_text("their attendance stay")
    row.locator("button.danger").click()
    expect(page.locator(".flash.ok")).to_contain_text("Target removed")
    expect(page.locator("#targets ~ table tbody tr", has_text="แขวงดินแดง")).to_have_count(0)


def _mangled_roster() -> bytes:
    """A roster as offices send them: a title, a blank row, phones Excel turned into numbers, a bad row."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["รายชื่อผู้เข้าอบรม รุ่นที่ 1 (ฉบับแก้ไข)"])  # row 1
    sheet.append([])                                             # row 2
    sheet.append(["ลำดับ", "คำนำหน้า", "ชื่อ", "นามสกุล", "เขต", "จังหวัด", "โทรศัพท์"])  # row 3
    sheet.append([1, "นาง", "กัลยา", "ภัททิยกุล", "ดินแดง", "กรุงเทพมหานคร", 812345678])  # row 4: lost its 0
    sheet.append([2, "นาย", "ธนากร", "ทองคำ", "ดุสิต", "กรุงเทพมหานคร", "0898765432"])   # row 5
    sheet.append([])                                                                      # row 6
    sheet.append([3, "นางสาว", "ปราณี", "สุขเย็น", "บางไม่มี", "กรุงเทพมหานคร", 891112222])  # row 7: no such district
    sheet.append([4, "นาย", "สุเทพ", "มั่นคง", "สาทร", "กรุงเทพมหานคร", 21234567])      # row 8: a landline
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_importing_an_excel_roster_names_excels_rows_repairs_phones_and_keeps_the_good_rows(day, data_dir):
    server, page, event = day
    page.goto(f"{server.url}/cohorts/{event['cohort2_id']}")
    page.set_input_files("input[name=file]", files=[{
        "name": "roster.xlsx", "buffer": _mangled_roster(),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.locator("form[action$='/roster'] button.primary").click()
    expect(page.locator("h1")).to_have_text("Nothing was imported")
    problem = page.locator("#problems tbody tr")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("7")  # as Excel numbers it: the title and blank rows counted
    expect(problem).to_contain_text("นางสาว ปราณี สุขเย็น")
    expect(problem).to_contain_text("บางไม่มี")
    repairs = page.locator("#repairs tbody tr")
    expect(repairs).to_have_count(3)
    expect(page.locator("#repairs")).to_contain_text("0812345678")
    expect(page.locator("#repairs")).to_contain_text("021234567")
    page.get_by_role("button", name="Import the 3 good rows").click()  # no file chosen again
    expect(page.locator("h1")).to_have_text("Roster imported")
    expect(page.locator("[role=status]").first).to_contain_text("Added: 3")
    db = open_data_dir(data_dir)
    phones = dict(db.execute("select first_name, phone from participants where cohort_id = ?",
                             [event["cohort2_id"]]).fetchall())
    db.close()
    assert phones == {"กัลยา": "0812345678", "ธนากร": "0898765432", "สุเทพ": "021234567"}


def test_the_sync_page_before_and_after_a_real_sync(day, central_server):
    server, page, event = day
    central = central_server()
    page.goto(f"{server.url}/sync/")
    main = page.locator("main")
    expect(main).to_contain_text("Not connected yet")
    waiting = int(page.locator("#waiting strong").inner_text())
    assert waiting > 0
    expect(page.locator("#waiting")).to_contain_text("have not reached the central server yet")
    page.fill("input[name=url]", central.url)
    page.fill("input[name=code]", central.storage().create_enrol_code("venue laptop"))
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".flash.ok").first).to_contain_text("This kiosk is enrolled")
    expect(page.locator("#last-sync")).to_contain_text("never yet")
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Synced: {waiting} sent")
    expect(page.locator("#waiting strong")).to_have_text("0")
    expect(page.locator("#waiting")).to_contain_text("the central server has everything")
    expect(page.locator("#last-sync")).to_contain_text(f"({waiting} sent, 0 received)")
    assert re.search(r"\d{2}:\d{2}", page.locator("#last-sync").inner_text())


@pytest.mark.parametrize("width", [640, 320])  # 1280 px at 200 % zoom, and a narrow phone
def test_coordinator_pages_reflow_without_sideways_scrolling(day, width):
    server, page, event = day
    page.set_viewport_size({"width": width, "height": 800})
    for path in ("/", f"/programs/{event['program_id']}", f"/cohorts/{event['cohort_id']}", "/sync/", "/health",
                 f"/reports/{event['program_id']}", "/users", f"/participants/{event['people'][0]['id']}"):
        page.goto(server.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at {width}px"
