"""Issue 20 (finding 7): a backup that leaves the data folder (the USB stick of the Health page,
`kiosk backup --to`) is sealed under a recovery key the coordinator prints once; the finder of a
lost stick reads nothing in it and forges nothing with it, and restoring it asks for the key."""

import re
import sqlite3

import pytest
from click.testing import CliRunner

from kiosk.badges.codes import certificate_code
from kiosk.cli.main import cli
from kiosk.door.checkin import check_in
from kiosk.ops import backup, health, sealing
from kiosk.store.db import DB_NAME, connect, device_id, origin_key
from kiosk.trust import programkeys

from support import build_event

HEX_KEY = re.compile(rb"(?=([0-9a-f]{64}))")  # every 64-digit run, overlapping


@pytest.fixture
def venue(data_dir, db, tmp_path):
    """An event with check-ins, a USB stick chosen as the second folder, and a recovery key."""
    event = build_event(db, open_now=True)
    for person in event["people"][:2]:
        check_in(db, person["code"])
    usb = tmp_path / "usb"
    usb.mkdir()
    backup.set_second_folder(data_dir, str(usb))
    digits = backup.make_recovery_key(data_dir)
    return event, usb, digits


def hidden_from_the_finder(db, event) -> dict[str, bytes]:
    """What the finder of a backup must not read: names, phones, badge codes, the program key
    (hex, raw, as printed on paper) and the laptop's signing key (hex, raw)."""
    program_key, signing_key = programkeys.key_of(db, event["program_id"]), origin_key(db, device_id(db))
    found = {"program key": program_key.encode(), "program key (raw)": bytes.fromhex(program_key),
             "program key (paper)": programkeys.format_key(program_key).encode(),
             "signing key": signing_key.encode(), "signing key (raw)": bytes.fromhex(signing_key)}
    for n, person in enumerate(event["people"]):
        found.update({f"first name {n}": person["first_name"].encode(), f"last name {n}": person["last_name"].encode(),
                      f"badge {n}": person["code"].encode(), f"phone {n}": person["phone"].encode()})
    return found


def forged_certificates(data: bytes, event, program_key: str, windows: bool = True) -> list[str]:
    """The finder's best try: every 64-digit hex run (and every 32-byte window) of the file taken
    as the program key, making the first person's certificate; the candidates that come out genuine."""
    pid, person = event["program_id"], event["people"][0]["id"]
    genuine = certificate_code(pid, person, bytes.fromhex(program_key))
    candidates = {bytes.fromhex(m.decode()) for m in HEX_KEY.findall(data)}
    if windows:
        candidates |= {data[i:i + 32] for i in range(len(data) - 31)}
    return [c.hex() for c in candidates if certificate_code(pid, person, c) == genuine]


def test_the_finder_of_the_usb_stick_reads_no_name_phone_or_key_and_forges_nothing(data_dir, db, venue):
    event, usb, _ = venue
    program_key = programkeys.key_of(db, event["program_id"])
    local, stick = backup.take_backup(data_dir)
    assert stick.parent == usb / backup.SECOND_SUBDIR and stick.name.endswith(".db.sealed")
    data, clear = stick.read_bytes(), local.read_bytes()
    hidden = hidden_from_the_finder(db, event)
    assert {"program key", "signing key", "first name 0", "phone 0"} <= {k for k, v in hidden.items() if v in clear}
    assert [name for name, secret in hidden.items() if secret in data] == []
    with pytest.raises(sqlite3.DatabaseError):  # the reviewer's way to the program key
        sqlite3.connect(stick).execute("select key from program_keys").fetchall()
    assert forged_certificates(clear, event, program_key, windows=False) == [program_key]  # in clear: taken
    assert forged_certificates(data, event, program_key) == []
    assert HEX_KEY.findall(data) == []  # nor any signing key to sign a bundle in the laptop's name


def test_a_sealed_backup_restores_only_with_its_recovery_key(data_dir, db, venue, tmp_path):
    event, usb, digits = venue
    _, stick = backup.take_backup(data_dir)
    check_in(db, event["people"][2]["code"])
    db.close()
    refusals = {}
    other_digits, _ = sealing.new_recovery_key()
    typo = digits[:3] + str((int(digits[3]) + 1) % 10) + digits[4:]
    tampered = tmp_path / "tampered.db.sealed"
    tampered.write_bytes(stick.read_bytes()[:-40] + bytes(40))
    cut = tmp_path / "cut.db.sealed"
    cut.write_bytes(stick.read_bytes()[:-20])
    for name, (path, key) in {"none": (stick, None), "other": (stick, other_digits), "typo": (stick, typo),
                              "tampered": (tampered, digits), "cut": (cut, digits)}.items():
        with pytest.raises(sealing.SealError) as refused:
            backup.restore(data_dir, path, key)
        refusals[name] = refused.value.reason
    assert refusals == {"none": "recovery_key_needed", "other": "recovery_key_wrong", "typo": "recovery_key_mistyped",
                        "tampered": "backup_damaged", "cut": "backup_damaged"}
    assert connect(data_dir / DB_NAME).execute("select count(*) from scans").fetchone()[0] == 3  # untouched
    report = backup.restore(data_dir, stick, " ".join(digits.split("-")))  # typed with spaces
    assert report.lacks["scans"] == 1
    restored = connect(data_dir / DB_NAME)
    assert restored.execute("select count(*) from scans").fetchone()[0] == 2
    restored.close()


def test_a_new_laptop_restores_from_the_stick_and_keeps_sealing_with_the_printed_key(data_dir, db, venue, tmp_path):
    _, usb, digits = venue
    _, stick = backup.take_backup(data_dir)
    db.close()
    new_laptop = tmp_path / "new-laptop"
    new_laptop.mkdir()
    backup.restore(new_laptop, stick, digits)
    assert backup.recovery_key(new_laptop)["id"] == backup.recovery_key(data_dir)["id"]
    backup.set_second_folder(new_laptop, str(usb))
    _, again = backup.take_backup(new_laptop)
    sealing.opened_digest(again, sealing.parse_recovery_key(digits))  # the same paper opens the new ones


def test_a_large_database_is_sealed_and_opened_a_chunk_at_a_time(data_dir, db, venue, monkeypatch):
    _, _, digits = venue
    monkeypatch.setattr(sealing, "CHUNK", 4096)
    local, stick = backup.take_backup(data_dir)
    chunks = list(sealing.chunks(stick, sealing.parse_recovery_key(digits)))
    assert len(chunks) == local.stat().st_size // 4096 + 1 and max(len(c) for c in chunks) == 4096
    assert b"".join(chunks) == local.read_bytes()
    swapped = bytearray(stick.read_bytes())
    header, block = 40, 4096 + 16
    swapped[header:header + 2 * block] = swapped[header + block:header + 2 * block] + swapped[header:header + block]
    stick.write_bytes(bytes(swapped))
    with pytest.raises(sealing.SealError) as refused:
        list(sealing.chunks(stick, sealing.parse_recovery_key(digits)))
    assert refused.value.reason == "backup_damaged"


def test_without_a_recovery_key_nothing_is_copied_outside_and_health_says_so(data_dir, db, tmp_path):
    build_event(db, open_now=True)
    usb = tmp_path / "usb"
    usb.mkdir()
    backup.set_second_folder(data_dir, str(usb))
    written = backup.take_backup(data_dir)
    assert [p.parent for p in written] == [data_dir / backup.BACKUP_DIR]
    assert not list(usb.rglob("kiosk-*"))
    [check] = [c for c in health.run_checks(data_dir, integrity=False) if c.key == "backup"]
    assert check.status == health.WARN and "No recovery key" in check.message
    with pytest.raises(sealing.SealError) as refused:
        backup.take_backup(data_dir, to=tmp_path / "elsewhere")
    assert refused.value.reason == "recovery_key_missing"


def test_clear_backups_an_older_release_left_on_the_stick_go(data_dir, db, venue):
    _, usb, _ = venue
    folder = usb / backup.SECOND_SUBDIR
    folder.mkdir()
    [old] = backup.take_backup(data_dir, to=data_dir / "old-style")
    (folder / old.name).write_bytes(old.read_bytes())
    _, stick = backup.take_backup(data_dir)
    assert backup.backups(folder) == [stick]


def test_kiosk_backup_to_a_stick_prints_the_recovery_key_once_and_restore_takes_it(data_dir, db, tmp_path):
    build_event(db, open_now=True)
    db.close()
    runner = CliRunner()
    stick = tmp_path / "stick"
    first = runner.invoke(cli, ["--data", str(data_dir), "backup", "--to", str(stick)])
    assert first.exit_code == 0, first.output
    [digits] = re.findall(r"\d{6}(?:-\d{6}){7}", first.output)
    assert "shown only this once" in first.output
    second = runner.invoke(cli, ["--data", str(data_dir), "backup", "--to", str(stick)])
    assert second.exit_code == 0 and not re.findall(r"\d{6}-\d{6}", second.output)
    shown = runner.invoke(cli, ["--data", str(data_dir), "recovery-key"])
    assert backup.recovery_key(data_dir)["id"] in shown.output and digits not in shown.output
    sealed = backup.backups(stick)[-1]
    assert sealed.name.endswith(".sealed") and not list(stick.glob("*.db"))
    refused = runner.invoke(cli, ["--data", str(data_dir), "restore", str(sealed)])
    assert refused.exit_code == 1 and "[recovery_key_needed]" in refused.output
    done = runner.invoke(cli, ["--data", str(data_dir), "restore", str(sealed), "--recovery-key", digits])
    assert done.exit_code == 0, done.output


def test_the_health_page_shows_the_recovery_key_once_when_the_stick_is_chosen(coordinator, data_dir, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    page = coordinator.post("/health/second-folder?lang=en", data={"folder": str(usb)}).get_data(as_text=True)
    [digits] = re.findall(r"\d{6}(?:</span><span>\d{6}){7}", page)
    groups = re.findall(r"\d{6}", digits)
    assert sealing.key_id(sealing.parse_recovery_key("-".join(groups))) == backup.recovery_key(data_dir)["id"]
    later = coordinator.get("/health?lang=en").get_data(as_text=True)
    assert groups[0] not in later and backup.recovery_key(data_dir)["id"] in later
    again = coordinator.post("/health/second-folder?lang=en", data={"folder": str(usb)}, follow_redirects=True)
    assert groups[0] not in again.get_data(as_text=True)  # choosing the folder again makes no new key
    fresh = coordinator.post("/health/recovery-key?lang=en").get_data(as_text=True)
    assert re.findall(r"\d{6}(?:</span><span>\d{6}){7}", fresh) and groups[0] not in fresh
