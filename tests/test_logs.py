"""The log: one line per request and per act, rotated in the data folder, with no phone or national ID."""

import csv
import io
import json
import logging
import re

import pytest
import requests

from kiosk.ops import log
from kiosk.store.db import open_data_dir
from kiosk.trust import accounts as auth

from support import KioskServer, build_event

pytestmark = pytest.mark.slow


def national_id(first12: str) -> str:
    """A Thai national ID with a valid check digit."""
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return first12 + str((11 - total % 11) % 10)


PEOPLE = [("นาย", "ประเสริฐ", "ทองคำ", "0891234567", national_id("110170020345")),
          ("นางสาว", "มาลี", "แก้วมณี", "0623456789", national_id("350990012876")),
          ("นาง", "กัลยา", "บุญเรือง", "0957654321", national_id("510040011223"))]


def csrf(http, url):
    return re.search(r'name="csrf_token" value="([^"]+)"', http.get(url).text).group(1)


def roster_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["คำนำหน้า", "ชื่อ", "นามสกุล", "เขต", "จังหวัด", "โทรศัพท์", "เลขบัตรประชาชน"])
    for title, first, last, phone, nid in PEOPLE:
        writer.writerow([title, first, last, "ดินแดง", "กรุงเทพมหานคร", phone[:3] + "-" + phone[3:], nid])
    return out.getvalue().encode()


def test_no_log_line_holds_a_phone_or_national_id(data_dir):
    db = open_data_dir(data_dir)
    event = build_event(db, open_now=True)
    auth.add_user(db, "chief", "coordinator", "password123")
    auth.add_user(db, "door", "staff", "password123")
    token = {"Authorization": "Bearer " + auth.issue_token(db, "door")}
    with KioskServer(data_dir) as server, requests.Session() as http:
        http.post(server.url + "/login", data={"username": "chief", "password": "password123",
                                               "csrf_token": csrf(http, server.url + "/login")})
        page = http.post(server.url + f"/cohorts/{event['cohort_id']}/roster",
                         data={"csrf_token": csrf(http, server.url + "/")},
                         files={"file": ("roster.csv", roster_csv(), "text/csv")})
        assert page.status_code == 200, page.text[-500:]
        codes = [r[0] for r in db.execute(
            "select b.code from badges b join participants p on p.id = b.participant_id"
            " where p.phone in (?, ?, ?)", [p[3] for p in PEOPLE]).fetchall()]
        assert len(codes) == 3
        for code in codes:
            assert requests.post(server.url + "/api/checkins", json={"code": code}, headers=token).ok
        for _, _, _, phone, nid in PEOPLE:  # searches and mistakes that carry the numbers themselves
            requests.get(server.url + "/api/participants/search", params={"q": phone}, headers=token)
            requests.post(server.url + "/api/checkins", json={"code": nid}, headers=token)
            requests.post(server.url + "/api/checkins", json={"code": phone, "nonce": nid}, headers=token)
            requests.get(server.url + f"/api/participants/{nid}/badge", headers=token)  # a path that holds one
            requests.get(server.url + f"/p/{phone[:3]}-{phone[3:6]}-{phone[6:]}")
        http.get(server.url + "/health")
    db.close()

    files = sorted((data_dir / log.LOG_DIR).glob("kiosk.log*"))
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    lines = [json.loads(line) for line in text.splitlines()]
    acts = {line.get("act") for line in lines}
    assert {"request", "check_in", "registration", "import"} <= acts, acts
    assert sum(1 for line in lines if line.get("act") == "check_in") >= 9
    numbers = [n for person in (*PEOPLE, *[(0, 0, 0, p["phone"], "") for p in event["people"]])
               for n in person[3:] if n]
    for number in numbers:
        for spelling in {number, number[:3] + "-" + number[3:], number[-9:]}:
            assert spelling not in text, f"{spelling} is in the log"


def test_redaction_masks_numbers_that_look_like_phones_or_ids():
    assert log.redact('{"q": "081-234-5678", "nid": "1101700203450"}') == '{"q": "[number]", "nid": "[number]"}'
    kept = ('{"at": "2026-11-21T02:15:00.123+00:00", "ms": 1.25, "status": 200, '
            '"cohort_id": "01a23116-6cc4-7f44-8123-456789012345"}')
    assert log.redact(kept) == kept


@pytest.mark.parametrize("path", ["/api/ping", '/a"b\\c', "/ค้นหา/0891234567", "/x/\x01\x1f/\u2028",
                                  "/p/110-1700-2034-50", "/d/+66891234567", "/v/1.0891234567"])
@pytest.mark.parametrize("user", [None, "chief", "door 0891234567"])
def test_a_request_line_is_one_json_object_with_its_strings_masked(path, user):
    fields = {"act": "request", "method": "GET", "path": path, "status": 404, "ms": 1.25, "user": user}
    record = logging.makeLogRecord({"name": log.REQUEST_LOGGER, "msg": "request", "levelname": "INFO",
                                    "created": 1796100000.1235, **fields})
    line = json.loads(log.JsonLines().format(record))
    assert line == {"at": "2026-12-01T04:40:00.123+00:00", "level": "info", "logger": "kiosk.request",
                    "msg": "request", **fields, "path": log.redact(path),
                    "user": None if user is None else log.redact(user)}
    assert "0891234567" not in json.dumps(line, ensure_ascii=False).replace("1.0891234567", "")
