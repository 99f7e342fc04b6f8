"""A person's own record (PDPA §30) as an A4 PDF in Thai: everything kept about them, from
`kiosk.people.privacy.person_record`."""

from __future__ import annotations

import json
from pathlib import Path

from fpdf import FPDF

from kiosk.clock import LOCAL_ZONE, parse_iso
from kiosk.documents.layout import FILL, MUTED, RULE, local_time, new_document, text
from kiosk.paths import write_atomically
from kiosk.thai import ERASED_NAME, ROLE_NAMES_TH, area_label, full_name, thai_date

LEFT, WIDTH, LINE = 18.0, 174.0, 6.2
BOTTOM = 280.0
RESULTS_TH = {"checked_in": "เข้าแล้ว", "already_checked_in": "เข้าซ้ำ", "checked_out": "ออก"}
VIA_TH = {"walk_in": "ลงทะเบียนหน้างานด้วยแท็บเล็ต", "tablet": "ลงทะเบียนหน้างานด้วยแท็บเล็ต",
          "roster": "นำเข้าจากรายชื่อ", "coordinator": "ผู้ประสานงานบันทึก", "demo": "ข้อมูลตัวอย่าง"}
SLOTS_TH = {"morning": "เช้า", "afternoon": "บ่าย"}


class _Page:
    """A cursor down A4 pages: a new page, with the heading repeated small, when one is full."""

    def __init__(self, pdf: FPDF, title: str):
        self.pdf, self.title, self.y = pdf, title, BOTTOM

    def need(self, height: float) -> float:
        if self.y + height > BOTTOM:
            self.pdf.add_page()
            text(self.pdf, LEFT, 10, WIDTH, 6, self.title, 9, colour=MUTED)
            self.y = 20.0
        y, self.y = self.y, self.y + height
        return y

    def heading(self, value: str) -> None:
        y = self.need(LINE * 2)
        self.pdf.set_fill_color(*FILL)
        self.pdf.rect(LEFT, y + 2, WIDTH, LINE + 1, style="F")
        text(self.pdf, LEFT + 2, y + 2.5, WIDTH - 4, LINE, value, 12, bold=True)

    def pair(self, label: str, value) -> None:
        y = self.need(LINE)
        text(self.pdf, LEFT + 2, y, 52, LINE, label, 10.5, colour=MUTED)
        text(self.pdf, LEFT + 56, y, WIDTH - 58, LINE, "-" if value in (None, "") else str(value), 10.5,
             smallest=7)

    def row(self, cells: list[tuple[float, str]]) -> None:
        y = self.need(LINE)
        x = LEFT + 2
        for width, value in cells:
            text(self.pdf, x, y, width - 2, LINE, value, 10, smallest=7)
            x += width
        self.pdf.set_draw_color(*RULE)
        self.pdf.line(LEFT, y + LINE, LEFT + WIDTH, y + LINE)


def record_pdf(record: dict) -> bytes:
    """The record as PDF bytes, in Thai."""
    title = "ข้อมูลส่วนบุคคลที่เก็บไว้ (พ.ร.บ. คุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562 มาตรา 30)"
    pdf = new_document(title=title)
    page = _Page(pdf, title)
    pdf.add_page()
    text(pdf, LEFT, 18, WIDTH, 9, title, 15, bold=True, smallest=11)
    text(pdf, LEFT, 27, WIDTH, 6, f"{record['program']['title']} · ออกเอกสารเมื่อ {_when(record['made_at'])}", 10,
         colour=MUTED, smallest=8)
    page.y = 36.0
    _person(page, record)
    _consent(page, record)
    _lists(page, record)
    _earned(page, record)
    _synced(page, record)
    return bytes(pdf.output())


def _person(page: _Page, record: dict) -> None:
    person = record["person"]
    page.heading("ข้อมูลของท่าน")
    page.pair("ชื่อ", full_name(person) if person.get("first_name") or person.get("erased_at") else ERASED_NAME)
    page.pair("บทบาท", ROLE_NAMES_TH.get(person.get("role"), person.get("role")))
    page.pair("ตำแหน่ง", person.get("position"))
    page.pair("หน่วยงาน", person.get("organization"))
    page.pair("พื้นที่", area_label(person.get("province_code"), person.get("district_code"),
                                   person.get("subdistrict_code"), short=False))
    page.pair("ชุมชน", person.get("community"))
    page.pair("โทรศัพท์", person.get("phone"))
    page.pair("เลขประจำตัวประชาชน", f"ลงท้ายด้วย {person['nid_last4']} (เก็บเลขเต็มเป็นรหัสที่อ่านกลับไม่ได้)"
              if person.get("nid_last4") else None)
    cohort = record.get("cohort") or {}
    page.pair("รุ่น", f"รุ่นที่ {cohort.get('number')}" if cohort else None)
    page.pair("สถานะ", {"active": "ปกติ", "withdrawn": "ถอนตัว", "waiting": "รอรับเข้า"}.get(person.get("status"),
                                                                                         person.get("status")))
    page.pair("ลบข้อมูลตามกำหนดเก็บ", thai_date(record["program"]["retention_date"])
              if record["program"].get("retention_date") else None)


def _consent(page: _Page, record: dict) -> None:
    consent, erasure = record["consent"], record.get("erasure")
    page.heading("ที่มาของข้อมูลและความยินยอม")
    page.pair("ได้ข้อมูลมาทาง", VIA_TH.get(consent.get("via"), consent.get("via")))
    page.pair("ประกาศความเป็นส่วนตัวฉบับ", consent.get("notice_version"))
    page.pair("เมื่อ", _when(consent.get("at")))
    page.pair("ผู้บันทึก", consent.get("by"))
    if erasure:
        page.heading("การลบข้อมูล")
        page.pair("ลบเมื่อ", _when(erasure["erased_at"]))
        page.pair("เหตุผล", erasure.get("reason"))
        page.pair("ผู้ดำเนินการ", erasure.get("erased_by"))


def _lists(page: _Page, record: dict) -> None:
    page.heading(f"บัตร ({len(record['badges'])})")
    for badge in record["badges"]:
        page.row([(60, badge["code"]), (56, "ออกบัตร " + _when(badge["issued_at"])),
                  (56, "ยกเลิก " + _when(badge["revoked_at"]) if badge["revoked_at"] else "ใช้งานอยู่")])
    page.heading(f"การลงเวลา ({len(record['attendance'])} ช่วง) และการสแกนทั้งหมด ({len(record['scans'])} ครั้ง)")
    for mark in record["attendance"]:
        page.row([(70, _session(mark)), (50, "เข้า " + local_time(mark["first_at"])),
                  (50, "ออก " + local_time(mark["last_out_at"]) if mark.get("last_out_at") else "")])
    for scan in record["scans"]:
        page.row([(50, _when(scan["at"])), (50, _session(scan) if scan.get("day") else "-"),
                  (40, RESULTS_TH.get(scan["result"], scan["result"])), (34, scan.get("via") or "ประตู")])


def _earned(page: _Page, record: dict) -> None:
    certificate, allowance = record.get("certificate"), record.get("allowance")
    page.heading("ประกาศนียบัตรและเบี้ยเลี้ยง")
    if certificate:
        state = "ได้รับ" if certificate["eligible"] else "ยังไม่ได้รับ"
        page.pair("ประกาศนียบัตร", f"{state} (เข้าร่วม {certificate['attended']}/{certificate['sessions']} ช่วง)")
        page.pair("รหัสประกาศนียบัตร", certificate.get("code"))
    else:
        page.pair("ประกาศนียบัตร", "ไม่มี")
    page.pair("เบี้ยเลี้ยง", f"{allowance['days']} วัน × {allowance['rate']} บาท = {allowance['amount']} บาท"
              if allowance else "ไม่มี")


def _synced(page: _Page, record: dict) -> None:
    page.heading("ข้อมูลถูกส่งไปที่")
    if not record["synced_to"]:
        page.pair("เครื่องอื่น", "ยังไม่ได้ส่งไปที่ใด")
    for remote in record["synced_to"]:
        where = {"central": "ส่วนกลาง", "peer": "เครื่องอื่นในสถานที่"}.get(remote.get("kind"), remote.get("kind"))
        state = "ได้รับครบ" if remote["holds_all"] else "ยังไม่ครบ"
        page.pair(where, f"{remote.get('url')} · {state} · {_when(remote.get('at'))}")


def _session(row: dict) -> str:
    slot = SLOTS_TH.get(row.get("slot"), "")
    return thai_date(row["day"], short=True) + (f" {slot}" if slot else "")


def _when(stamp: str | None) -> str:
    """A stored UTC time as a Thai date and venue clock time."""
    if not stamp:
        return "-"
    moment = parse_iso(stamp).astimezone(LOCAL_ZONE)
    return f"{thai_date(moment.date(), short=True)} {local_time(stamp)}"


def record_file(data: dict, fmt: str) -> tuple[bytes, str]:
    """The record as a file's bytes and their media type: "json", else a Thai PDF."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2).encode(), "application/json"
    return record_pdf(data), "application/pdf"


def write_record(data: dict, out) -> None:
    """The record as a private file: PDF or JSON by the file's extension."""
    write_atomically(Path(out), record_file(data, Path(out).suffix.lower().lstrip("."))[0])
