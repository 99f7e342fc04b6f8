"""Issue 20 (finding 10): a laptop that central enrolled for some programs only, paired with a
laptop holding more, receives nothing of the others - no row, no change, no key - and a peer
hands out only what both sides may hold under central's limits and the pairing's own."""

import json

import pytest

from kiosk.store import changes
from kiosk.trust import programkeys
from sync.client import enrol, sync_once
from sync.protocol import PROTOCOL
from sync.state import SyncState

from support import Kiosk, PeerServer, sync_post


@pytest.fixture
def holder(tmp_path):
    """Laptop S, holding programs A and B, serving its peers."""
    kiosk = Kiosk(tmp_path / "laptop-s")
    a, b = kiosk.create_program(), kiosk.create_program()
    kiosk.register(a, 3, prefix="เอ")
    kiosk.register(b, 3, prefix="บี")
    with PeerServer(kiosk.data_dir) as server:
        yield kiosk, server.url, a["program_id"], b["program_id"]
    kiosk.close()


def holds(kiosk: Kiosk, program_id: str) -> dict:
    db = kiosk.db
    return {"row": db.execute("select count(*) from programs where id = ?", [program_id]).fetchone()[0],
            "changes": db.execute("select count(*) from changes where program_id = ?", [program_id]).fetchone()[0],
            "people": db.execute("select count(*) from participants where program_id = ?", [program_id]).fetchone()[0],
            "key": programkeys.key_of(db, program_id) is not None}


def test_a_laptop_enrolled_for_program_a_only_receives_nothing_of_b_from_its_peer(tmp_path, holder, central_server):
    kiosk_s, url, a, b = holder
    central = central_server()
    laptop = Kiosk(tmp_path / "laptop-l")
    enrol(laptop.data_dir, central.url, central.storage().create_enrol_code("L", programs=[a]))
    enrol(laptop.data_dir, url, SyncState(kiosk_s.data_dir).create_pair_code(), kind="peer")
    sync_once(laptop.data_dir, url=url)
    assert holds(laptop, a) == {"row": 1, "changes": holds(kiosk_s, a)["changes"], "people": 3, "key": True}
    assert holds(laptop, b) == {"row": 0, "changes": 0, "people": 0, "key": False}
    laptop.close()


def test_a_pairing_limited_to_program_a_gives_b_to_no_laptop_whatever_it_says(tmp_path, holder):
    kiosk_s, url, a, b = holder
    laptop = Kiosk(tmp_path / "laptop-l")  # not enrolled anywhere: it claims no limit at all
    code = SyncState(kiosk_s.data_dir).create_pair_code(programs=[a])
    creds = enrol(laptop.data_dir, url, code, kind="peer")
    hello = {"protocol": PROTOCOL, "programs": {a: {}, b: {}}, "limit": None}
    answer = sync_post(url, "hello", json.dumps(hello).encode(), creds).json()
    assert set(answer["programs"]) == {a} and set(answer["program_keys"]) == {a}
    pull = {"protocol": PROTOCOL, "program_id": b, "vector": {}}
    refused = sync_post(url, "pull", json.dumps(pull).encode(), creds).json()
    assert refused["reason"] == "wrong_program"
    sync_once(laptop.data_dir, url=url)
    assert holds(laptop, b) == {"row": 0, "changes": 0, "people": 0, "key": False}
    laptop.close()


def test_a_laptop_never_hands_a_peer_a_program_outside_the_peers_limit(tmp_path, holder, central_server):
    """The other way round: laptop L (enrolled for everything) holds A and B and syncs with S,
    which central enrolled for A only: L pushes nothing of B to S, nor its key."""
    kiosk_s, url, a, _ = holder
    central = central_server()
    enrol(kiosk_s.data_dir, central.url, central.storage().create_enrol_code("S", programs=[a]))
    laptop = Kiosk(tmp_path / "laptop-l")
    c = laptop.create_program()["program_id"]
    enrol(laptop.data_dir, url, SyncState(kiosk_s.data_dir).create_pair_code(), kind="peer")
    sync_once(laptop.data_dir, url=url)
    assert holds(kiosk_s, c) == {"row": 0, "changes": 0, "people": 0, "key": False}
    assert holds(laptop, a)["people"] == 3 and changes.vector(laptop.db, c)
    laptop.close()
