"""Issue 10: what an authenticated device may write. Every change is checked by one validator on
the central server and on every kiosk; a bad change refuses its batch and leaves everything as it was."""

import copy

import pytest
from sync_helpers import Kiosk

from kiosk import changes
from kiosk.clock import format_hlc, parse_hlc
from kiosk.db import transaction
from sync import replica
from sync.central.storage import Storage
from sync.protocol import SyncError

NOW_MS = 1_780_000_000_000


@pytest.fixture
def world(tmp_path):
    """A kiosk holding programs P (with people) and P2, and the central server holding both."""
    kiosk = Kiosk(tmp_path / "door")
    p, p2 = kiosk.create_program(), kiosk.create_program()
    people = kiosk.register(p, 2)
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    for program in (p, p2):
        pid = program["program_id"]
        storage.push(pid, changes.changes_since(kiosk.db, pid, {}, limit=-1), source="test")
    yield kiosk, storage, p, p2, people
    kiosk.close()
    storage.close()


class Stranger:
    """Another device's next changes, stamped like a kiosk stamps them."""

    def __init__(self, origin="f" * 8 + "-stranger", seq=1):
        self.origin, self.seq = origin, seq

    def change(self, program_id, entity, entity_id, payload, **override):
        change = {"program_id": program_id, "origin": self.origin, "seq": self.seq, "entity": entity,
                  "id": entity_id, "op": "upsert", "payload": payload,
                  "hlc": format_hlc(NOW_MS - 1000, 0, self.origin), **override}
        self.seq += 1
        return change


def _refused_everywhere(world, program_id, batch, reason):
    kiosk, storage, *_ = world
    before_kiosk, before_central = kiosk.domain(), storage.change_count()
    with pytest.raises(SyncError) as central_refusal:
        storage.push(program_id, copy.deepcopy(batch), pusher=None, source="device")
    with pytest.raises(SyncError) as kiosk_refusal:
        replica.apply_batch(kiosk.db, program_id, copy.deepcopy(batch))
    assert (central_refusal.value.reason, kiosk_refusal.value.reason) == (reason, reason)
    assert kiosk.domain() == before_kiosk and storage.change_count() == before_central


def test_a_change_of_program_p2_cannot_rename_a_person_of_program_p(world):
    kiosk, storage, p, p2, people = world
    forged = Stranger().change(p2["program_id"], "participants", people[0],
                               {"first_name": "ปลอม", "phone": "0899999999"})
    _refused_everywhere(world, p2["program_id"], [forged], "wrong_program")


def test_a_programs_change_may_only_be_about_its_own_program(world):
    kiosk, storage, p, p2, people = world
    forged = Stranger().change(p2["program_id"], "programs", p["program_id"], {"title": "ยึดโครงการ"})
    _refused_everywhere(world, p2["program_id"], [forged], "wrong_program")


def test_a_new_row_may_not_name_a_cohort_of_another_program(world):
    kiosk, storage, p, p2, people = world
    forged = Stranger().change(p2["program_id"], "participants", "0" * 8 + "-newbie",
                               {"first_name": "ก", "last_name": "ข", "cohort_id": p["cohort_id"]})
    _refused_everywhere(world, p2["program_id"], [forged], "wrong_program")


@pytest.mark.parametrize("payload, override, reason", [
    ({"first_name": "ก", "last_name": "ข"}, {"hlc": "not-a-clock"}, "bad_clock"),
    ({"first_name": "ก", "last_name": "ข"}, {"hlc": "9999999999999-99999-" + "f" * 8 + "-stranger"}, "clock_ahead"),
    ({"first_name": "ก", "last_name": "ข"}, {"hlc": format_hlc(NOW_MS, 0, "someone-else")}, "bad_clock"),
    ({"first_name": "ก"}, {}, "missing_field"),
    ({"first_name": "ก", "last_name": "ข", "cohort_id": "/../../x"}, {}, "bad_field"),
    ({"first_name": "ก" * 5000, "last_name": "ข"}, {}, "bad_field"),
    ({"first_name": "ก", "last_name": "ข", "role": 7}, {}, "bad_field"),
], ids=["not-a-clock", "far-future", "another-origin", "partial-first-insert", "path-as-id", "huge-name",
        "number-as-role"])
def test_a_bad_person_change_refuses_its_batch_on_central_and_kiosk(world, payload, override, reason):
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    good = stranger.change(p["program_id"], "participants", "1" * 8 + "-fine",
                           {"first_name": "ดี", "last_name": "งาม", "cohort_id": p["cohort_id"]})
    bad = stranger.change(p["program_id"], "participants", "2" * 8 + "-bad", payload, **override)
    _refused_everywhere(world, p["program_id"], [good, bad], reason)


def test_a_cohort_number_must_be_a_number(world):
    kiosk, storage, p, p2, people = world
    forged = Stranger().change(p["program_id"], "cohorts", p["cohort_id"], {"number": "/../../x"})
    _refused_everywhere(world, p["program_id"], [forged], "bad_field")


def test_a_far_future_stamp_never_moves_the_kiosks_clock(world):
    kiosk, storage, p, *_ = world
    forged = Stranger().change(p["program_id"], "participants", "3" * 8 + "-x",
                               {"first_name": "ก", "last_name": "ข"}, hlc="9999999999999-00000-" + "f" * 8 + "-stranger")
    with pytest.raises(SyncError):
        replica.apply_batch(kiosk.db, p["program_id"], [forged])
    with transaction(kiosk.db):
        stamp = changes.clock(kiosk.db).tick()
    assert parse_hlc(stamp)[0] < 9_000_000_000_000


def test_a_later_coordinator_edit_wins_over_a_change_made_before_it(world):
    """The counterpart of the far-future refusal: an honest stamp loses to a later local edit."""
    kiosk, storage, p, p2, people = world
    earlier = Stranger().change(p["program_id"], "participants", people[0], {"phone": "0811111111"})
    replica.apply_batch(kiosk.db, p["program_id"], [earlier])
    kiosk.edit(p, people[0], phone="0822222222")
    assert kiosk.db.execute("select phone from participants where id = ?", [people[0]]).fetchone()[0] == "0822222222"
