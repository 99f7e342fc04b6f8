"""Two laptops at one venue sync with each other over the LAN with the same protocol, paired
with a one-time code; the peer endpoints are authenticated too."""

import pytest
import requests

from sync.client import enrol, sync_once
from sync.protocol import SyncError
from sync.state import SyncState

from support import Kiosk, PeerServer


@pytest.fixture
def laptop_a(tmp_path):
    """Laptop A serving its peers on a free port (`python -m sync peer-serve`)."""
    kiosk = Kiosk(tmp_path / "laptop-a")
    with PeerServer(kiosk.data_dir) as server:
        yield kiosk, server.url
    kiosk.close()


def test_two_laptops_share_one_roster_and_one_attendance_list(tmp_path, laptop_a):
    door_a, url = laptop_a
    program = door_a.create_program()
    people = door_a.register(program, 30)
    door_a.scan_many(program, people[:10])
    door_b = Kiosk(tmp_path / "laptop-b")
    enrol(door_b.data_dir, url, SyncState(door_a.data_dir).create_pair_code(), kind="peer")
    sync_once(door_b.data_dir, url=url)
    door_b.scan_many(program, people[5:20])          # overlapping people at the second door
    door_b.register(program, 2, prefix="มานี")
    door_a.scan_many(program, people[25:])
    sync_once(door_b.data_dir, url=url)
    assert door_a.domain() == door_b.domain()
    assert len(door_a.table("attendance")) == 25 * 2  # people 0..19 and 25..29, two sessions each


def test_peer_endpoints_refuse_unpaired_devices(tmp_path, laptop_a):
    _, url = laptop_a
    stranger = Kiosk(tmp_path / "stranger")
    with pytest.raises(SyncError) as refused:
        sync_once(stranger.data_dir, url=url, credentials={"device_id": stranger.device_id, "secret": "00" * 32})
    assert refused.value.reason == "unenrolled"
    assert requests.post(f"{url}/api/sync/hello", json={"protocol": 1}, timeout=5).json()["reason"] == "unauthenticated"


def test_a_pairing_code_works_once(tmp_path, laptop_a):
    door_a, url = laptop_a
    code = SyncState(door_a.data_dir).create_pair_code()
    enrol(Kiosk(tmp_path / "b").data_dir, url, code, kind="peer")
    with pytest.raises(SyncError) as refused:
        enrol(Kiosk(tmp_path / "c").data_dir, url, code, kind="peer")
    assert refused.value.reason == "bad_code"
