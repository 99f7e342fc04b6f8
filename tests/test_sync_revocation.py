"""Issue 20 (finding 6): revocation travels. Central records, per origin of a revoked device, the
last change it accepted; nothing after it is accepted on any path - the device's own push, an
honest peer's relay, `kiosk-central import-bundle` - and kiosks learn the revocation (signed by
central, in sync answers and from each other) and refuse the same changes too."""

import pytest
from click.testing import CliRunner

from kiosk.store import changes
from sync import bundle
from sync.central.api import CentralBackend
from sync.central.cli import main as central_cli
from sync.central.storage import Storage
from sync.client import Session
from sync.local import LocalTransport
from sync.peer import PeerBackend
from sync.protocol import SyncError
from sync.state import SyncState

from support import Kiosk

CENTRAL = "https://central.example"
PEER = "http://laptop-h.venue:8080"


class Venue:
    """Central (in-process, its real backend), laptop H (honest) and laptop C (about to be
    stolen): both enrolled with central for the program, C paired with H as a peer."""

    def __init__(self, root):
        self.root = root
        self.storage = Storage(f"sqlite:///{root / 'central.db'}")
        self.central = CentralBackend(self.storage)
        self.h, self.c = Kiosk(root / "h"), Kiosk(root / "c")
        self.program = self.h.create_program()
        self.people = self.h.register(self.program, 6)
        self.devices = {k: self._enrol(k) for k in (self.h, self.c)}
        self.pairing = self._pair(self.c, self.h)

    def _enrol(self, kiosk: Kiosk) -> str:
        code = self.storage.create_enrol_code(programs=[self.program["program_id"]])
        answer = self.storage.enrol(code, origin=kiosk.device_id, public_key=changes.own_public_key(kiosk.db))
        SyncState(kiosk.data_dir).save_remote(CENTRAL, "central", answer["device_id"], answer["secret"],
                                              answer["server_id"], answer["programs"])
        return answer["device_id"]

    def _pair(self, kiosk: Kiosk, server: Kiosk) -> str:
        served = SyncState(server.data_dir)
        device, secret = served.pair(served.create_pair_code(), "laptop C")
        SyncState(kiosk.data_dir).save_remote(PEER, "peer", device, secret, server.device_id)
        return device

    def with_central(self, kiosk: Kiosk) -> dict:
        transport = LocalTransport(self.central, self.devices[kiosk])
        return Session(kiosk.db, kiosk.data_dir, transport, SyncState(kiosk.data_dir), CENTRAL).run()

    def with_h(self, kiosk: Kiosk) -> dict:
        transport = LocalTransport(PeerBackend(self.h.data_dir), self.pairing)
        return Session(kiosk.db, kiosk.data_dir, transport, SyncState(kiosk.data_dir), PEER).run()

    def scans_on_central(self) -> set[str]:
        return set(self.storage.scan_ids())

    def close(self):
        for kiosk in (self.h, self.c):
            kiosk.close()
        self.storage.close()


@pytest.fixture
def venue(tmp_path):
    found = Venue(tmp_path)
    found.with_central(found.h)
    found.with_central(found.c)
    yield found
    found.close()


def _scan_after_revocation(venue, n=3) -> set[str]:
    """The thief checks people in on the stolen laptop C, after central revoked it."""
    return {venue.c.scan(venue.program, person, venue.program["sessions"][0]) for person in venue.people[:n]}


def test_changes_a_revoked_laptop_makes_after_revocation_never_reach_central_through_an_honest_peer(venue):
    before = venue.c.scan(venue.program, venue.people[5], venue.program["sessions"][1])
    venue.with_central(venue.c)  # delivered before the theft: it counts
    assert venue.storage.revoke(venue.devices[venue.c])
    forged = _scan_after_revocation(venue)
    venue.with_h(venue.c)  # H had not heard of the revocation yet: it takes them
    assert forged <= {r[0] for r in venue.h.db.execute("select id from scans")}
    summary = venue.with_central(venue.h)  # H learns in hello, and relays none of them
    assert summary["pushed"] == 0
    assert before in venue.scans_on_central() and not forged & venue.scans_on_central()
    assert venue.h.db.execute("select count(*) from revoked_origins").fetchone()[0] == 1
    with pytest.raises(SyncError) as refused:  # an older kiosk relaying them all the same
        pid = venue.program["program_id"]
        relayed = changes.changes_since(venue.c.db, pid, venue.storage.vector(pid), -1)
        venue.storage.push(pid, relayed, pusher=venue.devices[venue.h], keys=venue.c.keys())
    assert refused.value.reason == "revoked_origin"


def test_a_peer_that_learned_of_the_revocation_refuses_the_revoked_laptop(venue):
    venue.with_h(venue.c)  # laptop C synced with H at the venue before it was stolen
    venue.storage.revoke(venue.devices[venue.c])
    venue.with_central(venue.h)  # H learns the revocation from central
    assert SyncState(venue.h.data_dir).client(venue.pairing)[1] is True  # and unpairs laptop C
    forged = _scan_after_revocation(venue)
    before = venue.h.domain()
    pid = venue.program["program_id"]
    pushed = {"protocol": 3, "program_id": pid, "keys": venue.c.keys(),
              "changes": changes.changes_since(venue.c.db, pid, changes.vector(venue.h.db, pid), -1)}
    with pytest.raises(SyncError) as refused:  # were it still paired: its changes are refused
        PeerBackend(venue.h.data_dir).push(venue.pairing, 0.0, pushed)
    assert refused.value.reason == "revoked_origin"
    assert venue.h.domain() == before and not forged & {r[0] for r in venue.h.db.execute("select id from scans")}


def test_kiosk_central_import_bundle_takes_nothing_a_revoked_laptop_made_after_revocation(venue, tmp_path):
    venue.storage.revoke(venue.devices[venue.c])
    forged = _scan_after_revocation(venue)
    honest = venue.h.scan(venue.program, venue.people[4], venue.program["sessions"][0])
    venue.with_h(venue.c)  # the bundle is written by an honest laptop that never heard of it
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(venue.h.db, path)
    url = f"sqlite:///{tmp_path / 'central.db'}"
    result = CliRunner().invoke(central_cli, ["--data", str(tmp_path / "central"), "--db", url, "import-bundle",
                                              str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"refused {len(forged)} changes of revoked devices" in result.output
    on_central = set(Storage(url).scan_ids())
    assert honest in on_central and not forged & on_central


def test_a_kiosk_that_knows_of_the_revocation_skips_those_changes_in_a_bundle(venue, tmp_path):
    venue.storage.revoke(venue.devices[venue.c])
    forged = _scan_after_revocation(venue)
    path = tmp_path / "from-c.jsonl.gz"
    bundle.export_kiosk(venue.c.db, path)  # the thief's own bundle
    venue.with_central(venue.h)
    result = bundle.import_kiosk(venue.h.db, path)
    assert result["refused"] == len(forged)
    assert not forged & {r[0] for r in venue.h.db.execute("select id from scans")}


def test_revocations_travel_between_peers_signed_by_central_and_a_forged_one_is_ignored(venue, tmp_path):
    venue.storage.revoke(venue.devices[venue.c])
    venue.with_central(venue.h)
    third = Kiosk(tmp_path / "k")  # enrolled with central before the venue lost its internet
    venue.devices[third] = venue._enrol(third)
    pairing = SyncState(venue.h.data_dir).pair(SyncState(venue.h.data_dir).create_pair_code(), "K")
    SyncState(third.data_dir).save_remote(PEER, "peer", pairing[0], pairing[1], venue.h.device_id)
    Session(third.db, third.data_dir, LocalTransport(PeerBackend(venue.h.data_dir), pairing[0]),
            SyncState(third.data_dir), PEER).run()
    assert [r[0] for r in third.db.execute("select origin from revoked_origins")] == [venue.c.device_id]
    entry = PeerBackend(venue.h.data_dir).hello(pairing[0], 0.0, {"protocol": 3})["revocations"][0]
    forged = {**entry, "statement": {**entry["statement"], "origin": venue.h.device_id}}
    from sync import revocations
    assert revocations.learn(third.db, [forged], revocations.trusted_signers(SyncState(third.data_dir))) == []
    assert third.db.execute("select count(*) from revoked_origins").fetchone()[0] == 1
    third.close()


def test_central_on_sqlite_and_postgresql_records_and_enforces_the_cutoff(tmp_path, central_db_url):
    storage = Storage(central_db_url)
    laptop = Kiosk(tmp_path / "c")
    program = laptop.create_program()
    pid = program["program_id"]
    answer = storage.enrol(storage.create_enrol_code(), origin=laptop.device_id,
                           public_key=changes.own_public_key(laptop.db))
    storage.push(pid, changes.changes_since(laptop.db, pid, {}, -1), pusher=answer["device_id"], keys=laptop.keys())
    held = storage.vector(pid)[laptop.device_id]
    assert storage.revoke(answer["device_id"])
    [entry] = CentralBackend(storage).hello(answer["device_id"], 0.0, {"protocol": 3})["revocations"]
    assert entry["statement"]["through"] == {pid: held} and entry["statement"]["origin"] == laptop.device_id
    laptop.register(program, 1)
    with pytest.raises(SyncError) as refused:
        storage.push(pid, changes.changes_since(laptop.db, pid, storage.vector(pid), -1), source="relay",
                     keys=laptop.keys())
    assert refused.value.reason == "revoked_origin" and storage.vector(pid)[laptop.device_id] == held
    laptop.close()
    storage.close()
