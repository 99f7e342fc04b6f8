"""The kiosk's report pages and downloads (coordinators only), the forms, and the public check."""

import io

import openpyxl
import pytest

from kiosk.badges.codes import certificate_code

from scenarios import bangkok, bangkok_present


@pytest.fixture
def bkk(db):
    return bangkok(db)


def test_report_pages_need_a_coordinator(client, staff, bkk):
    assert staff.get(f"/reports/{bkk['program_id']}").status_code == 403


def test_attendance_page_shows_counts_charts_and_downloads(coordinator, bkk):
    html = coordinator.get(f"/reports/{bkk['program_id']}?cohort=1").get_data(as_text=True)
    day1 = sum(bangkok_present(i, 0) for i in range(200))
    assert f"<td>{day1}</td>" in html and html.count("<svg") == 2 and "เขตดินแดง" in html
    sheet = coordinator.get(f"/reports/sessions/{bkk['sessions'][0]['id']}/sheet.pdf")
    assert sheet.status_code == 200 and sheet.data.startswith(b"%PDF")
    book = openpyxl.load_workbook(io.BytesIO(coordinator.get(f"/reports/{bkk['program_id']}/report.xlsx?cohort=1").data))
    assert book["สรุป"]["B2"].value == 200
    csv = coordinator.get(f"/reports/{bkk['program_id']}/certificate-list.csv?cohort=1")
    assert csv.data.startswith("\ufeff".encode()) and csv.mimetype == "text/csv"


def test_certificate_rule_form_saves_and_refuses_bad_input(coordinator, bkk, db):
    url = f"/reports/{bkk['program_id']}/certificates"
    bad = coordinator.post(url, data={"kind": "percent", "min_percent": "150"})
    assert bad.status_code == 400
    before = db.execute("select certificate_rule from programs").fetchone()[0]
    assert coordinator.post(url, data={"kind": "percent", "min_percent": "101"}).status_code == 400
    assert db.execute("select certificate_rule from programs").fetchone()[0] == before
    ok = coordinator.post(url, data={"kind": "all_sessions", "signer_name": "นายสมศักดิ์ ใจดี"})
    assert ok.status_code == 302
    page = coordinator.get(url + "?cohort=1").get_data(as_text=True)
    both = sum(bangkok_present(i, 0) and bangkok_present(i, 1) for i in range(180))
    assert f"({both})" in page and f"({180 - both})" in page


def test_allowance_rate_form_and_sheet(coordinator, bkk):
    url = f"/reports/{bkk['program_id']}/allowances"
    assert coordinator.post(url, data={"rate": "abc"}).status_code == 400
    assert coordinator.post(url, data={"rate": "600"}).status_code == 302
    assert "หนึ่งพันสองร้อยบาทถ้วน" in coordinator.get(url + "?cohort=1").get_data(as_text=True)
    assert coordinator.get(url + ".pdf?cohort=1").data.startswith(b"%PDF")


def test_progress_keeps_one_entry_per_period(coordinator, bkk, db):
    url = f"/reports/{bkk['program_id']}/progress"
    for text in ("ฝนตกหนัก", "รถติด"):
        assert coordinator.post(url, data={"period": "2569-11", "problems": text, "obstacles": "-"}).status_code == 302
    assert db.execute("select count(*), max(problems) from progress_entries").fetchone() == (1, "รถติด")
    assert coordinator.post(url, data={"period": "", "problems": "x"}).status_code == 400
    assert "พฤศจิกายน 2569" in coordinator.get(url).get_data(as_text=True)


def test_public_verify_page_shows_only_name_program_and_dates(client, bkk):
    person = bkk["people"][3]
    page = client.get(f"/verify/{certificate_code(bkk['program_id'], person['id'], bkk['key'])}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and person["first_name"] in text and "2569" in text
    assert person["phone"] not in text and person["organization"] not in text
    assert client.get("/verify/CNOTACODE").status_code == 404


def _heads(html: str, table_id: str) -> list[str]:
    import re

    head = html.split(f'id="{table_id}"')[1].split("</thead>")[0]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<th>(.*?)</th>", head)]


def test_the_excel_columns_are_the_pages_columns_and_say_what_they_hold(coordinator, bkk):
    html = coordinator.get(f"/reports/{bkk['program_id']}?cohort=1&lang=th").get_data(as_text=True)
    book = openpyxl.load_workbook(io.BytesIO(coordinator.get(f"/reports/{bkk['program_id']}/report.xlsx?cohort=1").data))
    sheets = {"per-session": "รายช่วง", "per-day": "รายวัน", "per-role": "ตามบทบาท", "targets": "เทียบเป้าหมาย"}
    for table, sheet in sheets.items():
        page = [h for h in _heads(html, table) if h != "ใบลงลายมือชื่อ"]  # the page's column of links
        assert page == [c.value for c in book[sheet][1]], table
    assert "ผู้ลงทะเบียน" in _heads(html, "per-session") and "เป้าหมายของรุ่น" in _heads(html, "per-session")
    area = next(name for name in book.sheetnames if name.startswith("ตามพื้นที่"))
    assert _heads(html, "per-area") == [c.value for c in book[area][1]]


def test_a_table_of_one_cohort_holds_no_program_wide_target(coordinator, db, bkk):
    from kiosk.program import events

    events.add_target(db, bkk["program_id"], 2000)  # the whole program's 10 cohorts
    one = coordinator.get(f"/reports/{bkk['program_id']}?cohort=1").get_data(as_text=True)
    everything = coordinator.get(f"/reports/{bkk['program_id']}").get_data(as_text=True)
    assert "<td>2000</td>" not in one.split('id="targets"')[1]
    assert "<td>2000</td>" in everything.split('id="targets"')[1]


def test_the_area_table_is_shown_at_the_level_asked_with_its_target(coordinator, db, bkk):
    html = coordinator.get(f"/reports/{bkk['program_id']}?level=province").get_data(as_text=True)
    rows = html.split('id="per-area"')[1].split("</table>")[0]
    assert "<td>กรุงเทพมหานคร</td><td>176</td>" in rows  # 8 district targets of 22 make the province's


def test_the_grid_paints_no_session_still_to_come_as_an_absence(coordinator, db, event):
    html = coordinator.get(f"/reports/{event['program_id']}/grid?cohort=1").get_data(as_text=True)
    grid = html.split('id="grid"')[1]
    assert 'class="mark later"' in grid  # tomorrow's session
    assert grid.count('class="mark absent"') == len(event["people"])  # today's, nobody came yet


def test_a_days_two_sheets_download_under_names_of_their_own(coordinator, db, event):
    from kiosk.program import events

    morning, afternoon = events.split_day(db, event["session_id"])
    names = {coordinator.get(f"/reports/sessions/{s}/sheet.pdf").headers["Content-Disposition"] for s in (morning, afternoon)}
    names.add(coordinator.get(f"/reports/sessions/{morning}/sheet.pdf?blank=1").headers["Content-Disposition"])
    assert len(names) == 3 and any(f"sheet-cohort-1-{event['sessions'][0]['day']}-morning.pdf" in n for n in names)
