"""Issue 20 (finding 14): every file a command writes holds names or codes (badges, sheets,
certificates, allowances, reports, bundles, enrolment QR codes), so each is created 0600 - only
the account that ran the command can read it - whatever the umask of the shell."""

import os
import stat

import pytest
from click.testing import CliRunner

from kiosk.cli.main import cli
from kiosk.door.checkin import check_in
from kiosk.store import changes
from kiosk.store.db import open_data_dir
from kiosk.trust import programkeys
from sync.central.cli import main as central_cli
from sync.central.storage import Storage

from support import build_event

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX; Windows folders get an ACL")


@pytest.fixture(autouse=True)
def everyday_umask():
    """A shell's usual umask, which leaves new files readable by every local account."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def venue(tmp_path):
    folder = tmp_path / "kiosk-data"
    db = open_data_dir(folder)
    event = build_event(db, open_now=True)
    check_in(db, event["people"][0]["code"])
    db.close()
    return folder, event


def test_every_paper_and_file_a_kiosk_command_writes_is_private(venue, tmp_path):
    folder, event = venue
    out = tmp_path / "out"
    commands = [
        ["badges", "--cohort", "1", "--out", str(out / "badges.pdf")],
        ["badges", "--cohort", "1", "--format", "png", "--out", str(out / "pngs")],
        ["sheets", "--session", event["session_id"], "--out", str(out / "sheet.pdf")],
        ["certificate-rule", "--kind", "percent", "--min-percent", "50"],
        ["certificates", "--cohort", "1", "--out", str(out / "cert.pdf"), "--not-eligible", str(out / "not.csv")],
        ["allowances", "--cohort", "1", "--rate", "600", "--out", str(out / "allow.pdf")],
        ["report", "--cohort", "1", "--format", "csv", "--out", str(out / "report.csv")],
        ["report", "--cohort", "1", "--format", "xlsx", "--out", str(out / "report.xlsx")],
        ["export-bundle", str(out / "door.jsonl.gz")],
        ["pair-code", "--qr", str(out / "pair.png")],
    ]
    for args in commands:
        result = CliRunner().invoke(cli, ["--data", str(folder), *args], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 9 + len(event["people"]), sorted(p.name for p in written)
    assert {p.name: oct(mode(p)) for p in written if mode(p) != 0o600} == {}
    assert mode(out / "pngs") == 0o700


def test_every_file_a_central_command_writes_is_private(venue, tmp_path):
    folder, event = venue
    pid = event["program_id"]
    db = open_data_dir(folder)
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    storage.push(pid, changes.changes_since(db, pid, {}, limit=-1), source="test",
                 keys=dict(db.execute("select origin, public_key from origin_keys").fetchall()))
    storage.store_program_key(pid, programkeys.key_of(db, pid), added_by="test")
    db.close()
    storage.close()
    out = tmp_path / "central-out"
    base = ["--data", str(tmp_path / "central"), "--db", f"sqlite:///{tmp_path / 'central.db'}"]
    commands = [
        ["enrol-code", "--qr", str(out / "enrol.png")],
        ["report", "--program", pid, "--format", "xlsx", "--out", str(out / "r.xlsx")],
        ["certificates", "--program", pid, "--out", str(out / "c.pdf")],
        ["allowances", "--program", pid, "--rate", "600", "--out", str(out / "a.pdf")],
        ["export-bundle", "--program", pid, str(out / "central.jsonl.gz")],
    ]
    for args in commands:
        result = CliRunner().invoke(central_cli, [*base, *args], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(written) == 5 and {p.name: oct(mode(p)) for p in written if mode(p) != 0o600} == {}
