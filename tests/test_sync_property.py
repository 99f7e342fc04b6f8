"""Property: three kiosks doing random registrations, edits, scans, syncs (to the central server
and to each other) and crashes always converge to the same state."""

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kiosk.clock import format_hlc
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.trust import keys
from sync import replica
from sync.central.api import CentralBackend
from sync.central.storage import Storage
from sync.client import Session
from sync.local import LocalTransport
from sync.peer import PeerBackend
from sync.protocol import PROTOCOL, SyncError, dumps

from support import Kiosk

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
        self.devices = []
        for kiosk in self.kiosks:
            code = self.storage.create_enrol_code(programs=[self.program["program_id"]])
            self.devices.append(self.storage.enrol(code, origin=kiosk.device_id,
                                                   public_key=changes.own_public_key(kiosk.db))["device_id"])
        for i in (0, 1, 2):
            self._sync_central(i)
        self.mallory = Mallory(self.storage)

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
        transport = LocalTransport(self.central, self.devices[i])
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

    @rule(kind=st.sampled_from(["other_program", "other_origin", "altered"]), i=KIOSKS,
          to_peer=st.booleans())
    def a_malicious_device_pushes(self, kind, i, to_peer):
        """An enrolled device of another program tries to write into this one, as itself, as a
        victim kiosk's origin, or by altering a victim's change on its way: always refused."""
        victim = self.kiosks[i]
        body = self.mallory.forge(kind, self.program, victim)
        if body is None:
            return
        backend = PeerBackend(victim.data_dir) if to_peer else self.central
        with pytest.raises(SyncError) as refused:
            backend.push(self.mallory.device, 0.0, body)
        assert refused.value.reason in ("wrong_program", "bad_signature", "origin_mismatch")

    @invariant()
    def no_forged_change_reaches_another_program_or_origin(self):
        if not hasattr(self, "mallory"):
            return
        pid = self.program["program_id"]
        assert self.mallory.origin not in self.storage.vector(pid)
        for kiosk in self.kiosks:
            assert self.mallory.origin not in changes.vector(kiosk.db, pid)
            assert not kiosk.db.execute("select 1 from participants where first_name = ?", [Mallory.NAME]).fetchone()
        assert Mallory.NAME not in json.dumps(self.storage.entity_rows(pid, "participants"), ensure_ascii=False)

    @invariant()
    def central_holds_no_scan_twice(self):
        if hasattr(self, "storage"):
            ids = self.storage.scan_ids()
            assert len(ids) == len(set(ids))


class Mallory:
    """A device enrolled with the central server for another program, with a key of its own."""

    NAME = "มัลลอรี"

    def __init__(self, storage):
        self.origin, private = keys.new_origin()
        self.signer = keys.Signer(private)
        self.program = "0" * 8 + "-elsewhere"
        code = storage.create_enrol_code(programs=[self.program])
        self.device = storage.enrol(code, origin=self.origin, public_key=self.signer.public_key)["device_id"]

    def forge(self, kind: str, program: dict, victim) -> dict | None:
        pid = program["program_id"]
        people = [r[0] for r in victim.db.execute("select id from participants order by id")]
        if not people:
            return None
        if kind == "altered":
            mine = [c for c in changes.changes_since(victim.db, pid, {}, -1)
                    if c["origin"] == victim.device_id and c["entity"] == "participants"]
            if not mine:
                return None
            change = dict(mine[-1], payload={**mine[-1]["payload"], "first_name": self.NAME})
            return self._body(pid, [change], victim.keys())
        origin = self.origin if kind == "other_program" else victim.device_id
        program_id = self.program if kind == "other_program" else pid
        seq = changes.vector_seq(victim.db, program_id, origin) + 1
        change = {"program_id": program_id, "origin": origin, "seq": seq, "entity": "participants",
                  "id": people[0], "op": "upsert", "payload": {"first_name": self.NAME},
                  "hlc": format_hlc(int(time.time() * 1000), 0, origin)}
        change["sig"] = self.signer.sign(keys.next_chain(None, change))
        return self._body(program_id, [change], {self.origin: self.signer.public_key})

    @staticmethod
    def _body(program_id, batch, offered) -> dict:
        return json.loads(dumps({"protocol": PROTOCOL, "program_id": program_id, "changes": batch, "keys": offered}))


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
    replica.apply_batch(door_b.db, pid, changes.changes_since(door_a.db, pid, {}, -1), door_a.keys())
    for kiosk in (door_a, door_b):
        kiosk.scan(program, person, program["sessions"][0], at="2026-03-01T02:00:00.000Z")  # the same millisecond
    for kiosk, other in ((door_a, door_b), (door_b, door_a)):
        mine = [c for c in changes.changes_since(kiosk.db, pid, {}, -1) if c["entity"] == "scans"]
        replica.apply_batch(other.db, pid, [c for c in mine if c["origin"] == kiosk.device_id], kiosk.keys())
    assert door_a.table("attendance") == door_b.table("attendance")
