"""A certificate's check answers whether it still stands (issue 20, finding 13), on the kiosk's
offline /verify and on central; its QR is a link anyone can open (issue 22, point 10)."""

import zxingcpp
from PIL import Image

from kiosk import create_app as kiosk_app
from kiosk.badges.codes import certificate_code
from kiosk.documents import papers
from kiosk.people.participants import get_participant, set_status
from kiosk.reports.certificates import make_rule, parse_rule
from kiosk.reports.settings import kiosk_writer, set_certificate_rule
from kiosk.reports.sources import kiosk_dataset
from sync.central import create_app as central_app

from scenarios import national, national_present
from support import push_all

PUBLIC = "https://central.example.go.th"


def _three_of_four(made) -> tuple[int, dict]:
    """A person of the national course who came to three of the four days."""
    index = next(i for i in range(len(made["people"])) if sum(national_present(i, d) for d in range(4)) == 3)
    return index, made["people"][index]


def _pages(tmp_path, db, data_dir, storage):
    kiosk = kiosk_app({"DATA_DIR": str(data_dir), "TESTING": True}).test_client()
    central = central_app({"CENTRAL_DATA": str(tmp_path / "central"), "CENTRAL_DATABASE": storage.url,
                           "TESTING": True}).test_client()
    return kiosk, central


def _answers(client, code) -> tuple[int, str]:
    page = client.get(f"/verify/{code}")
    return page.status_code, page.get_data(as_text=True)


def test_a_withdrawn_person_or_a_certificate_no_longer_earned_reads_withdrawn_on_kiosk_and_central(
        db, data_dir, tmp_path):
    made = national(db)
    pid = made["program_id"]
    set_certificate_rule(kiosk_writer(db), pid, make_rule("percent", 75))
    _, came_three = _three_of_four(made)
    full = made["people"][next(i for i in range(154) if all(national_present(i, d) for d in range(4)))]
    from sync.central.storage import Storage

    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    push_all(db, storage, pid, made["key"])
    kiosk, central = _pages(tmp_path, db, data_dir, storage)
    codes = {p["id"]: certificate_code(pid, p["id"], made["key"]) for p in (came_three, full)}
    for client in (kiosk, central):
        for person in (came_three, full):
            status, page = _answers(client, codes[person["id"]])
            assert status == 200 and 'id="cert-status"' in page and "flash ok" in page, person["first_name"]

    set_status(db, get_participant(db, full["id"]), "withdrawn")  # the person left the program
    set_certificate_rule(kiosk_writer(db), pid, make_rule("percent", 80))  # the rule no longer covers 3 of 4
    push_all(db, storage, pid)
    for client in (kiosk, central):
        for person in (came_three, full):
            status, page = _answers(client, codes[person["id"]])
            assert status == 200 and "flash error" in page and 'id="cert-status"' in page, person["first_name"]
            assert person["first_name"] in page  # the holder is still named: the page says whose was withdrawn
            assert person["organization"] not in page and "สำนักงาน" not in page  # and nothing more than before
    storage.close()


def test_the_certificate_qr_is_the_public_link_and_the_kiosk_checks_it_offline(db, data_dir, tmp_path):
    made = national(db)
    pid = made["program_id"]
    person = made["people"][next(i for i in range(154) if all(national_present(i, d) for d in range(4)))]
    rule = make_rule("percent", 80, "นายสมศักดิ์ ผู้ที่กล่ำ", "อธิบดี", verify_url=PUBLIC + "/")
    set_certificate_rule(kiosk_writer(db), pid, rule)
    assert parse_rule(kiosk_dataset(db, pid).program["certificate_rule"]).verify_url == PUBLIC
    data = kiosk_dataset(db, pid).restricted(made["cohort_id"])
    data.participants = [p for p in data.participants if p["id"] == person["id"]]
    out = tmp_path / "one.pdf"
    assert papers.certificates(data, made["key"], out=out) == 1
    import subprocess

    subprocess.run(["pdftoppm", "-png", "-r", "150", str(out), str(tmp_path / "page")], check=True)
    found = zxingcpp.read_barcodes(Image.open(next(tmp_path.glob("page*.png"))))
    code = certificate_code(pid, person["id"], made["key"])
    assert [b.text for b in found] == [f"{PUBLIC}/verify/{code}"]
    kiosk = kiosk_app({"DATA_DIR": str(data_dir), "TESTING": True}).test_client()
    scanned = kiosk.get("/verify", query_string={"code": found[0].text})  # the QR read into the offline check
    assert scanned.status_code == 200 and person["first_name"] in scanned.get_data(as_text=True)


def test_a_public_address_that_is_not_a_web_address_is_refused(db):
    import pytest

    from kiosk.errors import KioskError

    for bad in ("central.example.go.th", "javascript:alert(1)", "https://x.go.th/?next=evil", "https://a b"):
        with pytest.raises(KioskError) as refused:
            make_rule("percent", 80, verify_url=bad)
        assert refused.value.reason == "bad_verify_url"


def test_a_session_removed_by_hand_no_longer_counts_against_a_certificate(db, data_dir, tmp_path):
    from kiosk.program import events
    from kiosk.reports.certificates import eligibility
    from sync.central.storage import Storage

    made = national(db)
    pid = made["program_id"]
    set_certificate_rule(kiosk_writer(db), pid, make_rule("percent", 80))
    index, person = _three_of_four(made)
    missed = next(d for d in range(4) if not national_present(index, d))
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    push_all(db, storage, pid, made["key"])
    kiosk, central = _pages(tmp_path, db, data_dir, storage)
    code = certificate_code(pid, person["id"], made["key"])
    for client in (kiosk, central):
        assert "flash error" in _answers(client, code)[1]  # three days of four: below 80 %
    events.remove_session(db, made["sessions"][missed]["id"])  # the day they missed was a mistake
    push_all(db, storage, pid)
    rule = parse_rule(kiosk_dataset(db, pid).program["certificate_rule"])
    assert next(r for r in eligibility(kiosk_dataset(db, pid), rule) if r["id"] == person["id"])["eligible"]
    for client in (kiosk, central):
        status, page = _answers(client, code)
        assert status == 200 and "flash ok" in page  # the check agrees with the certificates page
    storage.close()
