"""Health: `kiosk doctor`, the coordinator's page, /healthz, and writes refused on a nearly full disk."""

import re

import pytest
from click.testing import CliRunner

from kiosk.cli.main import cli
from kiosk.door.checkin import check_in
from kiosk.errors import KioskError
from kiosk.ops import backup, disk, health

from support import build_event


def doctor(data_dir):
    return CliRunner().invoke(cli, ["--data", str(data_dir), "doctor"])


@pytest.mark.parametrize("free, mark", [
    (disk.WARN_BYTES, "[ok  ]"),
    (disk.WARN_BYTES - 1, "[WARN]"),
    (disk.REFUSE_BYTES, "[WARN]"),
    (disk.REFUSE_BYTES - 1, "[FAIL]"),
])
def test_doctor_reports_low_disk_at_the_boundary(data_dir, db, monkeypatch, free, mark):
    monkeypatch.setattr(disk, "free_bytes", lambda path: free)
    result = doctor(data_dir)
    lines = result.output.splitlines()
    english = next(i for i, line in enumerate(lines) if line.strip().startswith("Free disk space:"))
    assert lines[english - 1].startswith(mark), result.output
    assert "พื้นที่ว่าง" in lines[english - 1]  # Thai first, English below
    assert result.exit_code == (1 if mark == "[FAIL]" else 0)


def test_doctor_reports_a_missing_raqm(data_dir, db, monkeypatch):
    monkeypatch.setattr(health, "raqm_available", lambda: False)
    result = doctor(data_dir)
    assert result.exit_code == 1
    assert "Badges would print Thai without its tone marks" in result.output and "Raqm" not in result.output
    assert any(line.startswith("[FAIL] การจัดรูปอักษรไทย") and "วรรณยุกต์" in line for line in result.output.splitlines())


def test_doctor_says_when_the_date_is_outside_the_program(data_dir, db):
    from datetime import date

    from kiosk.program import events

    program = events.create_program(db, "อบรมปีหน้า")
    events.add_cohort(db, program, 1, date(2031, 1, 6), 2)
    result = doctor(data_dir)
    assert "is outside every cohort's dates" in result.output


def test_doctor_reports_backup_age(data_dir, db):
    assert "No backup yet." in doctor(data_dir).output
    backup.take_backup(data_dir)
    assert "0 minutes ago" in doctor(data_dir).output


def test_a_nearly_full_disk_refuses_check_ins_and_changes_nothing(data_dir, db, monkeypatch):
    event = build_event(db, open_now=True)
    monkeypatch.setattr(disk, "free_bytes", lambda path: disk.REFUSE_BYTES - 1)
    with pytest.raises(KioskError) as caught:
        check_in(db, event["people"][0]["code"])
    assert caught.value.reason == "disk_full"
    assert db.execute("select count(*) from scans").fetchone()[0] == 0
    monkeypatch.setattr(disk, "free_bytes", lambda path: disk.REFUSE_BYTES)
    assert check_in(db, event["people"][0]["code"]).status == "checked_in"


def test_the_api_answers_disk_full_with_a_clear_reason(staff, db, monkeypatch):
    event = build_event(db, open_now=True)
    monkeypatch.setattr(disk, "free_bytes", lambda path: 1024)
    response = staff.post("/api/checkins", json={"code": event["people"][0]["code"]})
    body = response.get_json()
    assert response.status_code == 507 and body["reason"] == "disk_full" and body["ok"] is False
    assert "พื้นที่" in body["error"]


def test_healthz_needs_no_login_and_shows_no_personal_data(client, db):
    people = build_event(db, open_now=True)["people"]
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"ok", "status", "checks"}
    assert set(body["checks"]) == {"database", "disk", "shaping", "clock", "backup", "sync", "keys", "retention"}
    text = response.get_data(as_text=True)
    assert not any(p["first_name"] in text or p["phone"] and p["phone"] in text for p in people)


def test_the_health_page_explains_in_thai_and_english(coordinator):
    page = coordinator.get("/health").get_data(as_text=True)
    assert "สุขภาพ" in page and "พื้นที่ว่างบนดิสก์" in page
    english = coordinator.get("/health?lang=en").get_data(as_text=True)
    assert "Free disk space" in english and "No backup yet." in english


def test_only_a_coordinator_sees_the_health_page(staff):
    assert staff.get("/health").status_code == 403


def test_the_coordinator_backs_up_and_picks_a_second_folder_in_the_browser_form(coordinator, data_dir, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    missing = coordinator.post("/health/second-folder?lang=en", data={"folder": str(tmp_path / "gone")},
                               follow_redirects=True)
    assert "does not exist or cannot be written" in missing.get_data(as_text=True)
    coordinator.post("/health/second-folder", data={"folder": str(usb)})
    done = coordinator.post("/health/backup?lang=en", follow_redirects=True).get_data(as_text=True)
    assert "Backup saved" in done
    assert len(backup.backups(usb / backup.SECOND_SUBDIR)) == 1
    assert len(backup.backups(data_dir / backup.BACKUP_DIR)) == 1


def test_doctor_names_a_program_held_without_its_key(data_dir, db):
    from kiosk.program import events
    from kiosk.store.db import transaction

    events.create_program(db, "อบรมผู้นำชุมชน")
    assert "Every program held here has its key." in doctor(data_dir).output
    with transaction(db):
        db.execute("delete from program_keys")  # a program that came by a peer without its key
    result = doctor(data_dir)
    assert "[FAIL]" in result.output and "No key for 1 program(s) (อบรมผู้นำชุมชน)" in result.output
    assert "kiosk program key-add" in result.output


def test_the_health_page_speaks_plainly_and_keeps_the_log_behind_a_link(coordinator, data_dir):
    coordinator.get("/?lang=en")
    page = coordinator.get("/health").get_data(as_text=True)
    assert "Raqm" not in page and not re.search(r"\d+\.\d MB", page)  # no 79270.0 MB
    assert re.search(r"\d+(\.\d)? GB free|\d+ MB free", page)
    assert "Open the log" in page and 'class="log"' not in page
    log_page = coordinator.get("/health/log").get_data(as_text=True)
    assert 'class="log"' in log_page


@pytest.mark.parametrize("size, shown", [(500, "< 1 MB"), (530 * 2**20, "530 MB"), (1300 * 2**20, "1.3 GB"),
                                         (79270 * 2**20, "77 GB")])
def test_sizes_are_written_as_people_read_them(size, shown):
    assert health.human_size(size) == shown
