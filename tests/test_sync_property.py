"""Property: three kiosks doing random registrations, edits, scans, syncs (to the central server
and to each other) and crashes always converge to the same state."""

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from support import Kiosk

from kiosk import changes
from kiosk.db import transaction
from sync import replica
from sync.central.api import CentralBackend
from sync.central.storage import Storage
from sync.client import Session
from sync.local import LocalTransport
from sync.peer import PeerBackend
from sync.protocol import SyncError

KIOSKS = st.integers(0, 2)
FIELDS = st.sampled_from(["phone", "position", "organization", "first_name"])
VALUES = st.sampled_from(["กำนัน", "ผู้ใหญ่บ้าน", "0812345678", "อสม.", "Somchai"])


class ThreeKiosks(RuleBasedStateMachine):
    @initialize()
    def set_up(self):
        self.root = Path(tempfile.mkdtemp(prefix="sync-prop-"))
        self.storage = Storage(f"sqlite:///{self.root / 'central.db'}")
        self.central = CentralBackend(self.storage)
        self.kiosks = [Kiosk(self.root / f"k{i}") for i in range(3)]
        self.program = self.kiosks[0].create_program()
        self.kiosks[0].register(self.program, 2)
        for kiosk in self.kiosks:
            code = self.storage.create_enrol_code(programs=[self.program["program_id"]])
            self.storage.enrol(code, kiosk.device_id)
        for i in (0, 1, 2):
            self._sync_central(i)

    def teardown(self):
        for kiosk in getattr(self, "kiosks", []):
            kiosk.close()
        if hasattr(self, "storage"):
            self.storage.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def _session(self, i: int, transport) -> Session:
        kiosk = self.kiosks[i]
        return Session(kiosk.db, kiosk.data_dir, transport)

    def _sync_central(self, i: int, lose: bool = False) -> None:
        transport = LocalTransport(self.central, self.kiosks[i].device_id)
        transport.lose_next = lose
        try:
            self._session(i, transport).run()
        except SyncError as exc:
            assert exc.reason == "unreachable"

    def _people(self, i: int) -> list[str]:
        return [r[0] for r in self.kiosks[i].db.execute("select id from participants order by id")]

    @rule(i=KIOSKS, n=st.integers(1, 3))
    def register(self, i, n):
        self.kiosks[i].register(self.program, n, prefix=f"k{i}-")

    @rule(i=KIOSKS, pick=st.integers(0, 50), field=FIELDS, value=VALUES)
    def edit(self, i, pick, field, value):
        people = self._people(i)
        if people:
            self.kiosks[i].edit(self.program, people[pick % len(people)], **{field: value})

    @rule(i=KIOSKS, pick=st.integers(0, 50), session=st.integers(0, 1),
          result=st.sampled_from(["checked_in", "checked_in", "already_checked_in"]))
    def scan(self, i, pick, session, result):
        people = self._people(i)
        if people:
            self.kiosks[i].scan(self.program, people[pick % len(people)], self.program["sessions"][session], result)

    @rule(i=KIOSKS, lose=st.booleans())
    def sync_with_central(self, i, lose):
        self._sync_central(i, lose)

    @rule(a=KIOSKS, b=KIOSKS)
    def sync_with_peer(self, a, b):
        if a != b:
            self._session(a, LocalTransport(PeerBackend(self.kiosks[b].data_dir), self.kiosks[a].device_id)).run()

    @rule(i=KIOSKS)
    def crash_mid_transaction(self, i):
        """A process dies before COMMIT: its writes are rolled back and must leave no trace."""
        kiosk = self.kiosks[i]
        before = kiosk.domain()
        made = list(kiosk.made_scans)
        try:
            with transaction(kiosk.db):
                kiosk.register(self.program, 1, prefix="ghost")
                people = self._people(i)
                kiosk.scan(self.program, people[0], self.program["sessions"][0])
                raise KeyboardInterrupt  # the power goes out
        except KeyboardInterrupt:
            pass
        kiosk.made_scans = made
        assert kiosk.domain() == before

    @invariant()
    def central_holds_no_scan_twice(self):
        if hasattr(self, "storage"):
            ids = self.storage.scan_ids()
            assert len(ids) == len(set(ids))


class Converging(ThreeKiosks):
    def teardown(self):
        if hasattr(self, "kiosks"):
            for _ in range(2):
                for i in (0, 1, 2):
                    self._sync_central(i)
            states = [k.domain() for k in self.kiosks]
            assert states[0] == states[1] == states[2]
            made = {s["id"] for k in self.kiosks for s in k.made_scans}
            assert set(self.storage.scan_ids()) == made
            pairs = {(s["participant_id"], s["session_id"]) for k in self.kiosks for s in k.made_scans
                     if s["result"] == "checked_in"}
            assert self.storage.attendance_count() == len(pairs) == len(states[0]["attendance"])
        super().teardown()


Converging.TestCase.settings = settings(max_examples=int(__import__("os").environ.get("SYNC_PROP_EXAMPLES", 20)), stateful_step_count=25, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
test_three_kiosks_always_converge = Converging.TestCase


def test_two_scans_in_the_same_millisecond_give_the_same_first_scan_everywhere(tmp_path):
    door_a, door_b = Kiosk(tmp_path / "a"), Kiosk(tmp_path / "b")
    program = door_a.create_program()
    person = door_a.register(program, 1)[0]
    pid = program["program_id"]
    replica.apply_batch(door_b.db, pid, changes.changes_since(door_a.db, pid, {}, -1))
    for kiosk in (door_a, door_b):
        kiosk.scan(program, person, program["sessions"][0])
        kiosk.db.execute("update scans set at = '2026-03-01T02:00:00.000Z'")  # same millisecond on both
        kiosk.db.execute("update attendance set first_at = '2026-03-01T02:00:00.000Z'")
    for kiosk, other in ((door_a, door_b), (door_b, door_a)):
        mine = [c for c in changes.changes_since(kiosk.db, pid, {}, -1) if c["entity"] == "scans"]
        for change in mine:
            change["payload"]["at"] = "2026-03-01T02:00:00.000Z"
        replica.apply_batch(other.db, pid, [c for c in mine if c["origin"] == kiosk.device_id])
    assert door_a.table("attendance") == door_b.table("attendance")
