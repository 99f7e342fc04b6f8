"""PDPA on one kiosk: a person erased on request keeps no personal value in any table, change log,
new bundle or new backup; their badge stops; totals stay; signatures still verify; an old bundle
brings nothing back; retention erases a whole program by itself; a person's own record."""

import json
from datetime import date, timedelta

import pytest

from kiosk.door.checkin import CheckinError, check_in
from kiosk.ops.backup import take_backup
from kiosk.people import privacy
from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.reports.attendance import totals
from kiosk.reports.sources import kiosk_dataset
from kiosk.store import changes
from kiosk.store.db import DB_NAME, Checkpointer, connect, open_data_dir

from support import bangkok, build_event


def _national_id(first12: str) -> str:
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return first12 + str((11 - total % 11) % 10)


NATIONAL_ID = _national_id("350990012876")


@pytest.fixture
def person(db):
    """Cohort 1 over two days; one person with every personal field, checked in on both days."""
    event = build_event(db)
    cohort = events.cohort_by_id(db, event["cohort_id"])
    someone = register_participant(db, cohort, {
        "title": "นางสาว", "first_name": "วิไลวรรณ", "last_name": "ทองประเสริฐ", "role": "participant",
        "province": "กรุงเทพมหานคร", "district": "บางรัก", "phone": "0898765432", "position": "กรรมการชุมชน",
        "organization": "ชุมชนวัดแขก", "national_id": NATIONAL_ID})
    for session in event["sessions"]:
        moment = bangkok(session["day"], "09:00")
        assert check_in(db, someone["code"], session_id=session["id"], at=moment).status == "checked_in"
    return {**event, "someone": someone, "values": _values(db, someone["id"])}


def _values(db, participant_id: str) -> list[str]:
    """The person's personal values as stored (the last four digits of the ID are looked for in
    their column and the log: four digits alone turn up in any file)."""
    row = next(iter(db.query("select * from participants where id = ?", [participant_id])))
    found = [row["first_name"], row["last_name"], row["phone"], row["nid_hash"], row["position"], row["organization"]]
    assert all(found) and row["nid_last4"] == NATIONAL_ID[-4:]
    return found


def _holds_any(blob: bytes, values: list[str]) -> list[str]:
    return [v for v in values if v.encode() in blob]


def _files(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_an_erased_person_leaves_no_personal_value_in_the_database_or_its_log(db, data_dir, person):
    before = totals(kiosk_dataset(db, person["program_id"], person["cohort_id"]))
    privacy.erase_person(db, person["someone"]["id"], "the person asked (PDPA §33)", "chief")
    looker = connect(data_dir / DB_NAME)  # kiosk serve's checkpoints empty the WAL at their next look
    assert Checkpointer(data_dir / DB_NAME).checkpoint(looker)
    looker.close()
    assert _holds_any(_files(data_dir), person["values"]) == []
    row = next(iter(db.query("select * from participants where id = ?", [person["someone"]["id"]])))
    assert row["erased_at"] and row["first_name"] == "" and row["phone"] is None and row["nid_hash"] is None
    assert row["nid_last4"] is None
    assert totals(kiosk_dataset(db, person["program_id"], person["cohort_id"])) == before
    logged = [json.loads(r[0]) for r in db.execute("select payload from changes where entity_id = ?",
                                                   [person["someone"]["id"]])]
    assert logged and all("_salt" not in p and "first_name" not in p and "nid_last4" not in p for p in logged)


def test_an_erased_persons_badge_is_refused_with_its_reason(db, person):
    privacy.erase_person(db, person["someone"]["id"], "asked at the desk", "chief")
    session = person["sessions"][0]
    with pytest.raises(CheckinError) as refused:
        check_in(db, person["someone"]["code"], session_id=session["id"],
                 at=bangkok(session["day"], "10:00"))
    assert refused.value.reason == "erased"


def test_the_signed_history_still_verifies_after_an_erasure(db, tmp_path, person):
    privacy.erase_person(db, person["someone"]["id"], "asked", "chief")
    fresh = open_data_dir(tmp_path / "replay")
    assert changes.rebuild(db, fresh) == changes.change_count(db)  # every signature checked again
    row = next(iter(fresh.query("select * from participants where id = ?", [person["someone"]["id"]])))
    assert row["erased_at"] and row["phone"] is None


def test_an_old_bundle_imported_after_the_erasure_brings_nothing_back(db, data_dir, tmp_path, person):
    import sync

    old = tmp_path / "before.jsonl.gz"
    sync.export_bundle(db, old)
    privacy.erase_person(db, person["someone"]["id"], "asked", "chief")
    sync.import_bundle(db, old)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _holds_any(_files(data_dir), person["values"]) == []
    newer = tmp_path / "after.jsonl.gz"
    sync.export_bundle(db, newer)
    assert _holds_any(newer.read_bytes(), person["values"]) == []  # sealed: read it back too
    fresh = open_data_dir(tmp_path / "fresh")
    from kiosk.trust import programkeys
    programkeys.offered(fresh, {person["program_id"]: programkeys.key_of(db, person["program_id"])}, via="test")
    sync.import_bundle(fresh, newer, trust_new=True)
    sync.import_bundle(fresh, old, trust_new=True)
    fresh.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _holds_any(_files(tmp_path / "fresh"), person["values"]) == []


def test_a_backup_taken_after_the_erasure_holds_no_personal_value(db, data_dir, person):
    privacy.erase_person(db, person["someone"]["id"], "asked", "chief")
    made = take_backup(data_dir)
    assert made and all(_holds_any(path.read_bytes(), person["values"]) == [] for path in made)


def test_retention_erases_every_person_of_a_program_on_its_date_without_a_network(db, person):
    program = events.get_program(db, person["program_id"])
    last = max(s["day"] for s in db.query("select day from sessions where program_id = ?", [program["id"]]))
    due = date.fromisoformat(last).replace(year=date.fromisoformat(last).year + 2)
    assert privacy.retention_date(db, program) == due
    assert privacy.apply_retention(db, today=due - timedelta(days=1)) == 0
    count = db.execute("select count(*) from participants where program_id = ?", [program["id"]]).fetchone()[0]
    assert privacy.apply_retention(db, today=due) == count
    assert db.execute("select count(*) from participants where program_id = ? and erased_at is null"
                      " or phone is not null and program_id = ?", [program["id"], program["id"]]).fetchone()[0] == 0


def test_a_retention_date_later_than_the_notice_allows_is_refused(db, person):
    program = events.get_program(db, person["program_id"])
    latest = privacy.latest_retention(db, program["id"])
    with pytest.raises(privacy.PrivacyError) as refused:
        privacy.set_retention(db, program, latest + timedelta(days=1))
    assert refused.value.reason == "retention_too_late"
    earlier = privacy.set_retention(db, program, latest - timedelta(days=100))
    assert privacy.retention_date(db, events.get_program(db, program["id"])) == earlier


def test_a_persons_record_holds_every_item(db, person):
    record = privacy.person_record(db, person["someone"]["id"], [{"kind": "central", "url": "https://c",
                                                                  "at": "2026-12-06T10:00:00Z", "vector": {}}])
    assert record["person"]["first_name"] == "วิไลวรรณ" and record["person"]["nid_last4"] == NATIONAL_ID[-4:]
    assert record["consent"]["via"] and record["national_id"]
    assert {"person", "consent", "badges", "scans", "attendance", "certificate", "allowance", "erasure",
            "synced_to"} <= record.keys()
    assert len(record["attendance"]) == 2 and len(record["scans"]) == 2 and len(record["badges"]) == 1
    assert record["synced_to"] == [{"kind": "central", "url": "https://c", "at": "2026-12-06T10:00:00Z",
                                    "holds_all": False}]
    json.dumps(record, ensure_ascii=False)


def test_the_cli_writes_a_persons_record_as_pdf_and_json_and_erases_by_phone(db, data_dir, person, tmp_path):
    from click.testing import CliRunner

    from kiosk.cli.main import cli

    runner = CliRunner()
    base = ["--data", str(data_dir)]
    for name in ("record.pdf", "record.json"):
        done = runner.invoke(cli, [*base, "person", "record", "0898765432", "--out", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "record.pdf").read_bytes().startswith(b"%PDF")
    kept = json.loads((tmp_path / "record.json").read_text())
    assert kept["person"]["last_name"] == "ทองประเสริฐ" and len(kept["attendance"]) == 2
    done = runner.invoke(cli, [*base, "person", "erase", person["someone"]["code"], "--reason", "asked"])
    assert done.exit_code == 0, done.output
    assert db.execute("select erased_at from participants where id = ?", [person["someone"]["id"]]).fetchone()[0]
    again = runner.invoke(cli, [*base, "person", "erase", person["someone"]["id"], "--reason", "asked"])
    assert again.exit_code != 0 and "already_erased" in again.output


def test_the_health_check_says_when_the_people_are_erased_and_when_a_date_has_come(db, data_dir, person):
    from kiosk.ops import health
    from kiosk.ops.retention import keep_retention

    check = health.retention(data_dir)
    assert check.status == "ok" and check.values["count"] == db["participants"].count
    due = privacy.latest_retention(db, person["program_id"])
    db.execute("update sessions set day = '2020-01-06' where program_id = ?", [person["program_id"]])
    assert health.retention(data_dir).status == "warn"
    assert keep_retention(data_dir) == db["participants"].count
    assert health.retention(data_dir).status == "ok" and due > date(2020, 1, 6)


def test_backups_are_kept_at_most_keep_days_and_a_retention_drops_those_before_it(data_dir, db, person):
    from kiosk.ops import backup
    from kiosk.ops.retention import keep_retention

    folder = data_dir / backup.BACKUP_DIR
    folder.mkdir(exist_ok=True)
    old = folder / (backup.PREFIX + "20200101T010000.000000Z" + backup.SUFFIX)
    old.write_bytes(b"an old backup")
    backup.prune(folder)
    assert not old.exists()  # older than KEEP_DAYS, even as the newest of its day
    made = take_backup(data_dir)
    db.execute("update sessions set day = '2020-01-06' where program_id = ?", [person["program_id"]])
    keep_retention(data_dir)
    assert not any(p.exists() for p in made)  # they held the people the retention erased
    assert all(_holds_any(p.read_bytes(), person["values"]) == [] for p in backup.backups(folder))


def test_a_coordinator_downloads_the_record_and_erases_from_the_persons_page(coordinator, db, data_dir, person):
    from kiosk.ops import log

    log.configure(data_dir)
    page = f"/participants/{person['someone']['id']}"
    pdf = coordinator.get(page + "/record.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert coordinator.get(page + "/record.json").get_json()["person"]["phone"] == "0898765432"
    coordinator.get("/?lang=en")
    refused = coordinator.post(page + "/erase", data={"reason": ""}, follow_redirects=True)
    assert "Say why the data is erased" in refused.get_data(as_text=True)
    assert not privacy.erasure_of(db, person["someone"]["id"])
    done = coordinator.post(page + "/erase", data={"reason": "asked at the desk"}, follow_redirects=True)
    assert done.status_code == 200 and privacy.erasure_of(db, person["someone"]["id"])["erased_by"] == "coord"
    assert "วิไลวรรณ" not in done.get_data(as_text=True)
    edit = coordinator.post(page, data={"first_name": "กลับมา", "last_name": "อีก"}, follow_redirects=True)
    assert edit.status_code in (200, 400) and db.execute("select first_name from participants where id = ?",
                                                         [person["someone"]["id"]]).fetchone()[0] == ""
    log.shutdown()
    lines = [json.loads(line) for line in (data_dir / "logs" / "kiosk.log").read_text().splitlines()]
    audited = [line for line in lines if line.get("act") == "personal_data"]
    assert {line["what"] for line in audited} == {"person_record"} and all(line["who"] == "coord" for line in audited)
    assert not any("0898765432" in json.dumps(line, ensure_ascii=False) for line in lines)


def test_the_retention_thread_keeps_the_dates_once_a_day_and_lives_through_a_failure():
    from kiosk.ops.retention import RetentionScheduler

    days = []

    def keep(today):
        days.append(today)
        if len(days) == 1:
            raise OSError("disk full")
        return 0

    scheduler = RetentionScheduler(keep)
    scheduler.run_once()  # fails: tried again at the next tick
    scheduler.run_once()
    scheduler.run_once()  # the same day: already kept
    assert len(days) == 2 and days[0] == days[1]


def test_a_session_removed_by_hand_does_not_push_the_retention_date_later(db, person):
    program = events.get_program(db, person["program_id"])
    before = privacy.retention_date(db, program)
    cohort = db.execute("select id from cohorts where program_id = ?", [program["id"]]).fetchone()[0]
    wrong = events.add_session(db, cohort, before + timedelta(days=400))  # a day typed wrong…
    assert privacy.retention_date(db, program) > before
    events.remove_session(db, wrong)  # …and removed
    assert privacy.retention_date(db, program) == before


def test_only_a_coordinator_reads_or_erases_a_persons_data(app, client, staff, db, person):
    from support import tablet_client

    page = f"/participants/{person['someone']['id']}"
    tablet = tablet_client(app, db, person["cohort_id"])
    for caller in (staff, tablet):  # a door staff login; the public tablet (not even authenticated)
        assert caller.get(page + "/record.json").status_code in (302, 403, 404)
        assert caller.post(page + "/erase", data={"reason": "not mine to ask"}).status_code in (302, 400, 403, 404)
    anonymous = app.test_client()
    assert anonymous.get(page + "/record.json").status_code == 302
    assert not privacy.erasure_of(db, person["someone"]["id"])
    assert db.execute("select phone from participants where id = ?", [person["someone"]["id"]]).fetchone()[0]
