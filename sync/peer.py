"""A kiosk serving the sync protocol to its peers (laptop to laptop at one venue).

The same endpoints as the central server (`/api/sync/…`) over the kiosk's own database through
`kiosk.store.changes`. Peers pair like devices enrol with the central server: the coordinator makes a
one-time pairing code here (`kiosk pair-code`) and the other laptop runs `kiosk enrol URL CODE`.
"""

import time
from pathlib import Path

from flask import Flask, current_app

from kiosk.store import changes
from kiosk.store.changes import ChangeError
from kiosk.store.db import device_id, open_data_dir, rotate_device_id
from kiosk.trust import programkeys
from kiosk.webkit.errors import install_error_handlers
from kiosk.webkit.language import init_babel
from sync import replica, revocations
from sync.protocol import PROTOCOL, SyncError, check_batch, check_keys, check_protocol, check_pull, check_vector
from sync.server import make_blueprint
from sync.state import SyncState, within


class PeerBackend:
    """Answers sync requests from paired kiosks against this kiosk's database."""

    def __init__(self, data_dir, get_db=None):
        self.data_dir = Path(data_dir)
        self.state = SyncState(self.data_dir)
        self._get_db = get_db
        self.lookup = self.state.client
        self.remember_nonce = self.state.remember_nonce

    def _db(self):
        if self._get_db is not None:
            return self._get_db(), False
        return open_data_dir(self.data_dir), True

    def _with_db(self, work):
        db, own = self._db()
        try:
            return work(db)
        finally:
            if own:
                db.close()

    def enrol(self, body: dict) -> dict:
        """Pairs a kiosk with a one-time code made here."""
        check_protocol(body)
        device, secret = self.state.pair(str(body.get("code", "")), body.get("name"))
        me = self._with_db(device_id)
        return {"device_id": device, "secret": secret, "server_id": me, "programs": None}

    def allowed(self, device: str) -> set[str] | None:
        """The programs this laptop may hand `device` and take from it (None: any): within what
        central enrolled this laptop for, the pairing code's limit, and what the device says
        central enrolled it for (a laptop that lies about that still meets the first two)."""
        return within(self.state.central_limit(), *self.state.client_limits(device))

    def _check_allowed(self, device: str, program_id: str) -> None:
        allowed = self.allowed(device)
        if allowed is not None and program_id not in allowed:
            raise SyncError("wrong_program", f"program {program_id} is not shared with this laptop")

    def hello(self, device: str, offset: float, body: dict) -> dict:
        """Vectors and keys of the programs both sides may hold (`allowed`), revocations both
        ways, and the limit this side keeps to, for the device to keep to as well."""
        check_protocol(body)
        asked = body.get("programs") or {}
        if not isinstance(asked, dict):
            raise SyncError("bad_request", "programs maps program ids to vectors")
        origin = body.get("origin") if isinstance(body.get("origin"), str) else None
        self.state.client_contact(device, offset, origin)
        self.state.declare_limit(device, _limit(body.get("limit")))
        allowed = self.allowed(device)

        def work(db):
            revocations.take(db, self.state, body.get("revocations"))
            if origin in changes.revoked_origin_ids(db):
                self.state.revoke_clients_writing_as([origin])
                raise SyncError("revoked_device", "this laptop writes as a device revoked on the central server")
            for theirs in asked.values():
                check_vector(theirs)  # a claim alone never makes us rotate: see push
            wanted = set(asked) | set(changes.local_programs(db))
            if allowed is not None:
                wanted &= allowed
            offered = body.get("program_keys") if isinstance(body.get("program_keys"), dict) else {}
            programkeys.offered(db, {pid: offered[pid] for pid in wanted if pid in offered}, via=f"peer {device}")
            return {"server_id": device_id(db), "server_time": time.time(), "clock_offset_s": offset,
                    "programs": {pid: changes.vector(db, pid) for pid in sorted(wanted)},
                    "program_keys": programkeys.shareable(db, wanted), "revocations": revocations.entries(db),
                    "limit": sorted(allowed) if allowed is not None else None}
        return self._with_db(work)

    def push(self, device: str, offset: float, body: dict) -> dict:
        program_id, batch = check_batch(body)
        keys = check_keys(body)
        self._check_allowed(device, program_id)

        def work(db):
            me = device_id(db)
            mine_before = changes.vector_seq(db, program_id, me)
            replica.apply_batch(db, program_id, batch, keys)
            if changes.vector_seq(db, program_id, me) > mine_before:
                # our own changes, signed with our key, that we did not hold: we are a restored
                # backup (they are back now); stop writing under seqs the world has seen
                rotate_device_id(db, self.data_dir)
            return changes.vector(db, program_id)
        vector = self._with_db(work)
        return {"program_id": program_id, "vector": vector}

    def pull(self, device: str, offset: float, body: dict) -> dict:
        program_id, theirs, limit = check_pull(body)
        self._check_allowed(device, program_id)

        def work(db):
            try:
                batch, more = changes.batch_since(db, program_id, theirs, limit=limit)
            except ChangeError as exc:
                raise SyncError(exc.reason, str(exc)) from None
            return {"program_id": program_id, "changes": batch, "more": more,
                    "vector": changes.vector(db, program_id),
                    "keys": changes.keys_for(db, [c["origin"] for c in batch])}
        return self._with_db(work)


def _limit(found) -> list[str] | None:
    """A limit as a device declares it: a list of program ids, or None for none."""
    if isinstance(found, list) and len(found) <= 10_000 and all(isinstance(p, str) for p in found):
        return found
    return None


def _backend() -> PeerBackend:
    app = current_app
    if "sync_peer" not in app.extensions:
        from kiosk.store.db import get_db
        app.extensions["sync_peer"] = PeerBackend(app.config["DATA_DIR"], get_db=get_db)
    return app.extensions["sync_peer"]


# The kiosk app registers this blueprint (url prefix /api/sync) to serve its peers.
bp = make_blueprint("sync_peer", _backend)


def register(app) -> None:
    """Serves the peer endpoints on the kiosk app; they are signed, so CSRF does not apply."""
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)


def create_peer_app(data_dir) -> Flask:
    """A bare app serving only the peer endpoints of a data folder (tests, `kiosk peer-serve`)."""
    app = Flask(__name__)
    app.config.update(DATA_DIR=str(data_dir), DATABASE=str(Path(data_dir) / "kiosk.db"))
    open_data_dir(Path(data_dir)).close()
    app.extensions["sync_peer"] = PeerBackend(data_dir)
    app.register_blueprint(bp)
    init_babel(app)
    install_error_handlers(app, page=None)
    return app


__all__ = ["bp", "register", "PeerBackend", "create_peer_app", "PROTOCOL"]
