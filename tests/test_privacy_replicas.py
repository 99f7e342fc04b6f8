"""PDPA across every copy: a person registered on a tablet, checked in on two days at two kiosks,
synced to a peer and central and carried in a bundle, then erased on one kiosk. After the next
sync no replica, change log, new bundle or new backup holds a personal value of theirs; totals
stay; old copies bring nothing back; every signature still verifies. Central keeps retention
dates by itself. On SQLite and on PostgreSQL."""

import gzip
import json
import subprocess
import sys
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

import sync
from kiosk.door.checkin import check_in
from kiosk.ops.backup import take_backup
from kiosk.people import privacy, registration
from kiosk.people import tablets as pairing
from kiosk.reports.attendance import totals
from kiosk.reports.sources import kiosk_dataset
from kiosk.store import changes
from kiosk.store.db import open_data_dir
from kiosk.thai import ERASED_NAME
from kiosk.trust import programkeys
from sync.central import cli as central_cli
from sync.client import sync_once
from sync.state import SyncState

from support import Kiosk, PeerServer, bangkok, build_event, enrol

pytestmark = pytest.mark.slow


def _national_id(first12: str) -> str:
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return first12 + str((11 - total % 11) % 10)


WALK_IN = {"title": "นางสาว", "first_name": "ปรีดาภรณ์", "last_name": "ศรีวิชัยกุล", "role": "participant",
           "province": "10", "district": "1004", "phone": "0865551234", "position": "ประธานชุมชน",
           "organization": "ชุมชนบ้านครัว", "national_id": _national_id("110170099887"), "pdpa": "1"}


def _files(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _found(blob: bytes, values: list[str]) -> list[str]:
    return [v for v in values if v.encode() in blob]


def _central_bytes(central) -> bytes:
    """Everything central's database holds: the SQLite file (and its WAL), or a pg_dump."""
    if central.db_url.startswith("sqlite"):
        central.storage().engine.dispose()
        return _files(central.data_dir)
    url = central.db_url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(["/usr/lib/postgresql/15/bin/pg_dump", "--data-only", url], capture_output=True,
                          check=True).stdout


@pytest.fixture
def venue(tmp_path, central):
    """Kiosk A (with a tablet) serving peer B; both enrolled with central; the person registered on
    A's tablet, checked in on day 1 at A and day 2 at B, and everything synced everywhere."""
    door_a = Kiosk(tmp_path / "door-a")
    event = build_event(door_a.db, people=(), starts_on=date(2026, 11, 21), days=2, second_cohort=False)
    tablet, _ = pairing.claim_pairing(door_a.db, pairing.pair_tablet(door_a.db, event["cohort_id"])["code"])
    made = registration.register_walk_in(door_a.db, tablet, dict(WALK_IN), "walk-in-key-000001")
    enrol(door_a, central.url, central.storage())
    sync_once(door_a.data_dir)
    peer = PeerServer(door_a.data_dir).start()
    door_b = Kiosk(tmp_path / "door-b")
    sync.enrol(door_b.data_dir, peer.url, SyncState(door_a.data_dir).create_pair_code(), kind="peer")
    enrol(door_b, central.url, central.storage())
    sync_once(door_b.data_dir, url=peer.url)
    day1, day2 = event["sessions"]
    check_in(door_a.db, made.code, session_id=day1["id"], at=bangkok(day1["day"], "09:00"))
    check_in(door_b.db, made.code, session_id=day2["id"], at=bangkok(day2["day"], "09:00"))
    for kiosk, url in ((door_b, peer.url), (door_b, None), (door_a, None), (door_b, peer.url)):
        sync_once(kiosk.data_dir, url=url)
    person = next(iter(door_a.db.query("select * from participants where id = ?", [made.person["id"]])))
    values = [person[k] for k in ("first_name", "last_name", "phone", "nid_hash", "position", "organization")]
    # four digits alone turn up in any file: the last four of the ID are looked for as the log holds them
    values.append(f'"nid_last4":"{person["nid_last4"]}"')
    yield {"a": door_a, "b": door_b, "peer": peer, "central": central, "event": event, "person": person,
           "values": values, "code": made.code, "tmp": tmp_path}
    peer.stop()


def test_an_erasure_on_one_kiosk_reaches_every_copy_and_old_copies_bring_nothing_back(venue):
    door_a, door_b, central = venue["a"], venue["b"], venue["central"]
    old_bundle = venue["tmp"] / "before.jsonl.gz"
    sync.export_bundle(door_b.db, old_bundle)
    before = totals(kiosk_dataset(door_a.db, venue["event"]["program_id"]))
    assert all(v for v in venue["values"])

    privacy.erase_person(door_b.db, venue["person"]["id"], "the person asked at the desk", "chief")
    for kiosk, url in ((door_b, None), (door_a, None), (door_b, venue["peer"].url)):
        sync_once(kiosk.data_dir, url=url)

    for kiosk in (door_a, door_b):
        kiosk.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert _found(_files(kiosk.data_dir), venue["values"]) == [], kiosk.data_dir
        assert kiosk.db.execute("select nid_last4 from participants where id = ?", [venue["person"]["id"]]).fetchone() == (None,)
        new_bundle = venue["tmp"] / f"after-{kiosk.data_dir.name}.jsonl.gz"
        sync.export_bundle(kiosk.db, new_bundle)
        assert _found(gzip.decompress(new_bundle.read_bytes()), venue["values"]) == []
        assert all(_found(p.read_bytes(), venue["values"]) == [] for p in take_backup(kiosk.data_dir))
        assert totals(kiosk_dataset(kiosk.db, venue["event"]["program_id"])) == before
        fresh = open_data_dir(venue["tmp"] / f"replay-{kiosk.data_dir.name}")
        assert changes.rebuild(kiosk.db, fresh) == changes.change_count(kiosk.db)  # every signature again
    assert _found(_central_bytes(central), venue["values"]) == []
    assert central.storage().person_row(venue["person"]["id"])["erased_at"]

    sync.import_bundle(door_a.db, old_bundle)  # an old stick, at a kiosk that knows the erasure
    door_a.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _found(_files(door_a.data_dir), venue["values"]) == []
    later = Kiosk(venue["tmp"] / "replacement")  # a replacement laptop: enrols, syncs, then the old stick
    enrol(later, central.url, central.storage(), programs=[venue["event"]["program_id"]])
    sync_once(later.data_dir)
    sync.import_bundle(later.db, old_bundle)
    later.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _found(_files(later.data_dir), venue["values"]) == []
    assert totals(kiosk_dataset(later.db, venue["event"]["program_id"])) == before
    key = programkeys.key_of(door_a.db, venue["event"]["program_id"])
    imported = subprocess.run([sys.executable, "-m", "sync.central", "--data", str(central.data_dir), "--db",
                               central.db_url, "import-bundle", "--program-key", key, str(old_bundle)],
                              capture_output=True, text=True, check=False)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert _found(_central_bytes(central), venue["values"]) == []


def test_the_erased_persons_badge_is_refused_everywhere(venue):
    privacy.erase_person(venue["a"].db, venue["person"]["id"], "asked", "chief")
    sync_once(venue["a"].data_dir)
    sync_once(venue["b"].data_dir)
    day2 = venue["event"]["sessions"][1]
    for kiosk in (venue["a"], venue["b"]):
        with pytest.raises(Exception) as refused:
            check_in(kiosk.db, venue["code"], session_id=day2["id"], at=bangkok(day2["day"], "10:00"))
        assert refused.value.reason == "erased"


def test_central_erases_a_program_on_its_retention_date_by_itself(venue):
    storage = venue["central"].storage()
    plan = {p["program_id"]: p for p in storage.retention_plan()}[venue["event"]["program_id"]]
    assert plan["date"] == date(2028, 11, 22) and plan["people"] == 1
    assert storage.apply_retention(today=plan["date"] - timedelta(days=1)) == 0
    assert storage.apply_retention(today=plan["date"]) == 1
    assert _found(_central_bytes(venue["central"]), venue["values"]) == []
    record = storage.person_record(venue["person"]["id"])
    assert record["erasure"]["kind"] == "retention" and len(record["attendance"]) == 2


def _central_cli(central, *args):
    result = CliRunner().invoke(central_cli.main, ["--data", str(central.data_dir), "--db", central.db_url, *args])
    return result.exit_code, result.output


def test_central_keeps_the_same_promises_from_its_command_line(venue):
    central, program_id = venue["central"], venue["event"]["program_id"]
    out = venue["tmp"] / "record.json"
    code, said = _central_cli(central, "person", "record", venue["person"]["phone"], "--out", str(out))
    assert code == 0, said
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["person"]["first_name"] == WALK_IN["first_name"] and len(record["attendance"]) == 2
    assert record["consent"]["via"] == "tablet" and record["consent"]["notice_version"]
    assert record["certificate"]["eligible"] and record["certificate"]["code"].startswith("C")
    mine = privacy.person_record(venue["a"].db, venue["person"]["id"])
    assert (record["certificate"], record["allowance"]) == (mine["certificate"], mine["allowance"])

    code, said = _central_cli(central, "retention", "2099-01-01", "--program", program_id)
    assert code == 1 and "[retention_too_late]" in said  # never later than the notice allows
    code, said = _central_cli(central, "retention", "2027-12-31", "--program", program_id)
    assert code == 0, said
    sync_once(venue["a"].data_dir)
    kept = next(iter(venue["a"].db.query("select * from programs where id = ?", [program_id])))
    assert privacy.retention_date(venue["a"].db, kept) == date(2027, 12, 31)

    code, said = _central_cli(central, "person", "erase", venue["code"], "--reason", "asked by letter")
    assert code == 0, said
    code, said = _central_cli(central, "person", "erase", venue["code"], "--reason", "again")
    assert code == 1 and "[already_erased]" in said
    for kiosk in (venue["a"], venue["b"]):
        sync_once(kiosk.data_dir)
        kiosk.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert _found(_files(kiosk.data_dir), venue["values"]) == []
    assert _found(_central_bytes(central), venue["values"]) == []


def _verified(venue) -> list[dict]:
    """The certificate's answer at both kiosks and at central (the public /verify of each)."""
    from kiosk.badges.codes import certificate_code
    from kiosk.reports.sources import kiosk_reader
    from kiosk.reports.verify import person_dataset, verify_certificate
    from sync.central.reports import verify as central_verify

    program_id, person_id = venue["event"]["program_id"], venue["person"]["id"]
    code = certificate_code(program_id, person_id, programkeys.badge_key(venue["a"].db, program_id))
    answers = [verify_certificate(code, programkeys.program_keys(k.db), lambda p, i, db=k.db: person_dataset(
        kiosk_reader(db), p, i)) for k in (venue["a"], venue["b"])]
    return [*answers, central_verify(venue["central"].storage(), code)]


def test_an_erased_persons_certificate_answers_withdrawn_everywhere_without_a_name(venue):
    assert [(a["status"], a["name"]) for a in _verified(venue)] == [
        ("valid", f"{WALK_IN['title']}{WALK_IN['first_name']} {WALK_IN['last_name']}")] * 3
    privacy.erase_person(venue["b"].db, venue["person"]["id"], "asked", "chief")
    for kiosk in (venue["b"], venue["a"], venue["b"]):
        sync_once(kiosk.data_dir)
    assert [(a["status"], a["name"]) for a in _verified(venue)] == [("withdrawn", ERASED_NAME)] * 3
