"""The `kiosk` command."""

import csv

import pytest
from click.testing import CliRunner

from kiosk.cli.main import cli
from kiosk.clock import local_day
from kiosk.store.db import open_data_dir
from kiosk.trust import accounts as auth


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "kiosk-data"

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--data", str(folder), *args], input=input, catch_exceptions=False)

    invoke.folder = folder
    return invoke


def walk(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from walk(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, c in walk(cli) if not hasattr(c, "commands")], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output, result.output


def test_demo_creates_cohort_one_today_and_prints_a_working_login(run):
    result = run("demo")
    assert result.exit_code == 0
    password = result.output.split("coordinator / ")[1].split()[0]
    db = open_data_dir(run.folder)
    assert auth.authenticate(db, "coordinator", password)
    counts = dict(db.execute("select role, count(*) from participants group by role").fetchall())
    assert counts == {"participant": 180, "speaker": 6, "staff": 14}
    assert db.execute("select count(*) from cohorts").fetchone()[0] == 10
    assert db.execute("select count(distinct district_code) from participants where role = 'participant'").fetchone()[0] == 8
    # Today at the venue (Bangkok), not the machine's day: from 17:00 UTC they differ.
    assert db.execute("select count(*) from sessions where day = ?", [local_day().isoformat()]).fetchone()[0] == 1
    again = run("demo")
    assert "Kept" in again.output and db.execute("select count(*) from participants").fetchone()[0] == 200


def test_event_set_up_from_the_command_line(run):
    program_id = run("program", "add", "อบรมผู้นำการเปลี่ยนแปลง", "--fiscal-year", "2570").output.strip()
    assert run("cohort", "add", "1", "--start", "28/02/2562", "--days", "4", "--site", "โรงแรม").exit_code == 0
    overlap = run("cohort", "session", "1", "--day", "2019-03-01", "--slot", "afternoon")  # the day has a session
    assert overlap.exit_code == 1 and "session_overlap" in overlap.output
    assert run("cohort", "session", "1", "--day", "2019-03-04", "--slot", "morning").exit_code == 0
    assert run("target", "15", "--cohort", "1", "--province", "ลำปาง", "--district", "อ.เมือง").exit_code == 0
    listing = run("program", "list").output
    assert program_id in listing and "2019-02-28 – 2019-03-04" in listing  # the cohort's dates follow its sessions
    bad = run("cohort", "add", "1", "--start", "2019-02-28")
    assert bad.exit_code == 1 and "duplicate_cohort" in bad.output


def test_import_roster_reports_bad_rows_and_fails(run, tmp_path):
    run("program", "add", "p")
    run("cohort", "add", "1", "--start", "2030-01-01")
    path = tmp_path / "roster.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ชื่อ", "นามสกุล", "จังหวัด"])
        writer.writerow(["สมชาย", "ใจดี", "ลำปาง"])
        writer.writerow(["สมศรี", "ใจดี", "จังหวัดไม่มี"])
    result = run("import-roster", str(path), "--cohort", "1")
    assert result.exit_code == 1 and "row 3: unknown_area" in result.output and "nothing imported" in result.output
    assert run("import-roster", str(path), "--cohort", "1", "--skip-bad").exit_code == 0
    assert open_data_dir(run.folder).execute("select count(*) from participants").fetchone()[0] == 1


def test_users_and_tokens(run):
    assert run("user", "add", "somchai", "--role", "staff", input="password123\npassword123\n").exit_code == 0
    token = run("user", "token", "somchai").output.strip()
    assert auth.user_for_token(open_data_dir(run.folder), token)["username"] == "somchai"
    short = run("user", "add", "somsri", "--role", "staff", input="short\nshort\n")
    assert short.exit_code == 1 and "weak_password" in short.output


def test_badges_as_pdf_and_png(run, tmp_path):
    run("demo")
    pdf = tmp_path / "badges.pdf"
    assert run("badges", "--cohort", "1", "--out", str(pdf)).exit_code == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    out = tmp_path / "png"
    result = run("badges", "--cohort", "1", "--out", str(out), "--format", "png")
    assert result.exit_code == 0 and len(list(out.glob("*.png"))) == 200


def test_sync_commands_use_the_data_folder_given_with_data(run, tmp_path, monkeypatch):
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "default-home"))
    run("demo")
    bundle = tmp_path / "door.jsonl.gz"
    result = run("export-bundle", str(bundle))
    assert result.exit_code == 0, result.output
    assert bundle.stat().st_size > 1000  # the demo's changes, not an empty default folder's
    assert not (tmp_path / "default-home").exists()
    unenrolled = run("sync")
    assert unenrolled.exit_code == 1 and "unenrolled" in unenrolled.output


def test_import_roster_says_who_moved_from_which_cohort(tmp_path):
    from click.testing import CliRunner

    from kiosk.cli.main import cli

    runner, data = CliRunner(), str(tmp_path / "d")
    roster = tmp_path / "r.csv"
    roster.write_text("ชื่อ,นามสกุล,เขต\nกัลยา,ผู้ที่ยิ่ง,ดินแดง\n", encoding="utf-8")
    for args in (["program", "add", "อบรม"], ["cohort", "add", "1", "--start", "2026-12-01"],
                 ["cohort", "add", "2", "--start", "2026-12-08"], ["import-roster", str(roster), "--cohort", "1"]):
        assert runner.invoke(cli, ["--data", data, *args]).exit_code == 0
    moved = runner.invoke(cli, ["--data", data, "import-roster", str(roster), "--cohort", "2"])
    assert moved.exit_code == 0, moved.output
    assert "row 2: กัลยา ผู้ที่ยิ่ง moved from cohort 1 to cohort 2" in moved.output


def test_import_bundle_of_a_new_program_says_how_to_accept_it(run, tmp_path):
    program_id = run("program", "add", "อบรมผู้นำชุมชน").output.strip()
    bundle = tmp_path / "central.jsonl.gz"
    assert run("export-bundle", str(bundle)).exit_code == 0
    empty = tmp_path / "new-kiosk"

    def import_into_empty(*flags):
        return CliRunner().invoke(cli, ["--data", str(empty), "import-bundle", str(bundle), *flags])

    refused = import_into_empty()
    assert refused.exit_code == 1
    assert f"this side does not hold program {program_id} yet" in refused.output
    assert "[wrong_program]" in refused.output
    assert "Nothing was imported" in refused.output and "--trust-new" in refused.output
    assert "--program-key" in refused.output and "kiosk program key" in " ".join(refused.output.split())
    assert open_data_dir(empty).execute("select count(*) from programs").fetchone()[0] == 0
    keyless = import_into_empty("--trust-new")
    assert keyless.exit_code == 1 and "[program_key_missing]" in keyless.output
    assert "--program-key" in keyless.output
    printed = run("program", "key").output.splitlines()[-1]
    assert len(printed) == 64 and printed.count("-") == 12
    typo = ("A" if printed[0] != "A" else "B") + printed[1:]  # the first letter: every one of its bits counts
    mistyped = import_into_empty("--trust-new", "--program-key", typo)
    assert mistyped.exit_code == 1 and "[bad_program_key]" in mistyped.output
    assert open_data_dir(empty).execute("select count(*) from programs").fetchone()[0] == 0
    accepted = import_into_empty("--trust-new", "--program-key", printed.lower().replace("-", " "))
    assert accepted.exit_code == 0, accepted.output
    assert open_data_dir(empty).execute("select id from programs").fetchall() == [(program_id,)]
    again = CliRunner().invoke(cli, ["--data", str(empty), "program", "key"])
    assert again.output.splitlines()[-1] == printed  # the typed key is kept: its badges scan here
