"""The central server's side of the sync protocol: enrolment, hello, push and pull over Storage.

Who may send which changes (the origin rule):

* a device pushes changes of its own origin, and relays changes of other origins (a tablet's
  kiosk B → laptop A → central), so a change's origin need not be the pusher;
* a change the server already holds under (program, origin, seq) is accepted only if identical
  (a resend); different content is refused whole with "origin_mismatch" — so no device can
  rewrite what another device (or itself, before a restore) has already delivered;
* no device may push changes in the central server's own origin ("origin_mismatch");
* a device enrolled for some programs only may not push or pull others ("wrong_program");
* a revoked device's origins get no change accepted past the last one accepted before the
  revocation, whoever pushes it ("revoked_origin"); `hello` hands every device central's signed
  statements of them (sync.revocations), so that kiosks refuse them too.

* every change is signed by its origin (protocol 2, see kiosk.trust.keys): a relay forwards changes
  of other origins but cannot invent or alter them ("bad_signature").
"""

import time

from sync.protocol import SyncError, check_batch, check_keys, check_protocol, check_pull


class CentralBackend:
    """Answers sync requests from enrolled devices, storing into a `Storage`."""

    def __init__(self, storage):
        self.storage = storage
        self.lookup = storage.lookup
        self.remember_nonce = storage.remember_nonce

    def enrol(self, body: dict) -> dict:
        """Exchanges a one-time code for a device secret."""
        check_protocol(body)
        code = body.get("code")
        if not isinstance(code, str):
            raise SyncError("bad_request", "enrolment needs a code")
        origin, public_key = body.get("origin"), body.get("public_key")
        if origin is not None and not isinstance(origin, str):
            raise SyncError("bad_request", "origin is a device id")
        return self.storage.enrol(code, body.get("name"), origin, public_key)

    def hello(self, device: str, offset: float, body: dict) -> dict:
        """Vectors of the programs the device asks for or is enrolled for, their keys, and the
        server time; keeps the program keys the device hands over (kiosk.trust.programkeys)."""
        check_protocol(body)
        asked = body.get("programs") or {}
        if not isinstance(asked, dict):
            raise SyncError("bad_request", "programs maps program ids to vectors")
        allowed = self.storage.device_programs(device)
        wanted = set(asked) | set(allowed or [])
        if allowed is not None:
            wanted &= set(allowed)
        origin = body.get("origin") if isinstance(body.get("origin"), str) else None
        self.storage.record_contact(device, offset, origin=origin)
        offered = body.get("program_keys") if isinstance(body.get("program_keys"), dict) else {}
        self.storage.offered_program_keys(device, {pid: offered[pid] for pid in sorted(wanted) if pid in offered})
        return {"server_id": self.storage.server_id, "server_time": time.time(), "clock_offset_s": offset,
                "programs": {pid: self.storage.vector(pid) for pid in sorted(wanted)},
                "program_keys": self.storage.program_keys_for(sorted(wanted)),
                "revocations": self.storage.revocation_entries()}

    push_nonce = True  # the push's nonce is stored in the push's own transaction

    def push(self, device: str, offset: float, body: dict, nonce: str | None = None) -> dict:
        """Applies one batch whole and answers the new vector (the acknowledgement).

        The nonce, the device's program check, the changes, the read tables and the vector
        advance are one transaction; a refused push still records its nonce (a replay of it is
        refused as "replayed").
        """
        try:
            program_id, batch = check_batch(body)
            keys = check_keys(body)
        except SyncError:
            if nonce is not None and not self.storage.remember_nonce(device, nonce):
                raise SyncError("replayed", "this request was already received") from None
            raise
        vector = self.storage.push(program_id, batch, pusher=device, offset=offset, nonce=nonce, keys=keys)
        return {"program_id": program_id, "vector": vector}

    def pull(self, device: str, offset: float, body: dict) -> dict:
        """A batch of the changes the device lacks, oldest HLC first."""
        program_id, theirs, limit = check_pull(body)
        self.storage.check_program(device, program_id)
        vector = self.storage.vector(program_id)
        if not vector:
            raise SyncError("unknown_program", f"no changes of program {program_id} here")
        found, more = self.storage.pull(program_id, theirs, limit)
        self.storage.record_contact(device, offset, synced=True, pulled=len(found))
        return {"program_id": program_id, "changes": found, "more": more, "vector": vector,
                "keys": self.storage.keys_for(c["origin"] for c in found)}
