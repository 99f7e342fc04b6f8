"""The kiosk's sync client: hello, push what the other side lacks, pull what we lack.

The sender trusts only acknowledgements: after each pushed batch the receiver answers its new
vector, and the next batch starts from there. A crash anywhere means a resend, and a resend is
a no-op. The same client talks to the central server and to another kiosk.
"""

import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from kiosk.paths import write_atomically
from kiosk.store import changes
from kiosk.store.changes import ChangeError
from kiosk.store.db import device_id, open_data_dir
from kiosk.trust import programkeys
from sync import auth, replica, revocations
from sync.protocol import PROTOCOL, SyncError, encode_body, same_change, split_batches
from sync.state import SyncState, normal_url, within

log = logging.getLogger(__name__)
RETRY_STATUS = {429, 500, 502, 503, 504}


class HttpTransport:
    """Signed JSON requests to a sync server, retried with backoff on network errors and 5xx.

    Each attempt is signed afresh (a new nonce), so a retry is never refused as a replay.
    """

    def __init__(self, url: str, device: str | None = None, secret: str | None = None,
                 timeout=(5, 120), attempts: int = 4, backoff: float = 0.5, session=None,
                 clock_skew: float = 0.0, verify: bool | str = True):
        self.url = normal_url(url)
        self.verify = verify  # True (the system's CAs, or REQUESTS_CA_BUNDLE) or a CA file's path
        self.clock_skew = clock_skew  # tests: a kiosk whose clock is off
        self.device, self.secret = device, secret
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.session = session or requests.Session()
        self.base_path = urlsplit(self.url).path

    def call(self, endpoint: str, body: dict) -> dict:
        """POSTs `body` to /api/sync/<endpoint>; returns the answer or raises SyncError."""
        raw, headers = encode_body(body)
        path = f"{self.base_path}/api/sync/{endpoint}"
        failure = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            signed = dict(headers)
            if endpoint != "enrol":
                signed.update(auth.sign(self.device, self.secret, "POST", path, raw,
                                         now=time.time() + self.clock_skew))
            try:
                response = self.session.post(self.url + "/api/sync/" + endpoint, data=raw,
                                             headers=signed, timeout=self.timeout, verify=self.verify)
            except requests.RequestException as exc:
                failure = SyncError("unreachable", f"{self.url} unreachable: {exc.__class__.__name__}")
                continue
            if response.status_code in RETRY_STATUS:
                failure = SyncError("unreachable", f"{self.url} answered {response.status_code}")
                continue
            return _answer(response)
        raise failure


def _answer(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        # whatever answered is no sync server of ours (a web page, a router): say so, not a status code
        reason = "payload_too_large" if response.status_code == 413 else "not_a_sync_server"
        raise SyncError(reason, f"server answered {response.status_code} without JSON") from None
    if not data.get("ok"):
        raise SyncError(data.get("reason", "bad_request"), data.get("error", "refused"))
    return data


def trust_file(data_dir, url: str) -> Path:
    """Where the CA certificate given at enrolment for a remote is kept (one file per host and port)."""
    netloc = urlsplit(normal_url(url)).netloc.replace(":", "_").replace("/", "_")
    return Path(data_dir) / "trust" / f"{netloc}.pem"


def verify_for(data_dir, url: str) -> bool | str:
    """The CA file to check a remote's certificate with, if one was given at enrolment."""
    path = trust_file(data_dir, url)
    return str(path) if path.exists() else True


def keep_ca(data_dir, url: str, ca_file) -> str:
    """Checks that `ca_file` holds a CA certificate and keeps a copy for `url`; its path."""
    from cryptography import x509

    try:
        pem = Path(ca_file).read_bytes()
        certificate = x509.load_pem_x509_certificate(pem)
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (OSError, ValueError, x509.ExtensionNotFound):
        is_ca = False
    if not is_ca:
        raise SyncError("bad_ca", f"{ca_file} is not a CA certificate (PEM): copy ca.pem from the central server")
    path = trust_file(data_dir, url)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomically(path, pem)
    return str(path)


def enrol(data_dir, url: str, code: str, name: str | None = None, kind: str = "central",
          ca: str | None = None) -> dict:
    """Exchanges a one-time code for a device secret and remembers the remote in sync.db.

    `ca`: the remote's CA certificate (a server with its own local CA, `serve --https`); it is
    kept in the data folder and every later request to that remote is checked against it.
    """
    verify = keep_ca(data_dir, url, ca) if ca else verify_for(data_dir, url)
    db = open_data_dir(Path(data_dir))
    try:
        me = device_id(db)
        public_key = changes.keys_for(db, [me]).get(me) or changes.own_public_key(db)
    finally:
        db.close()
    if plain_http(url):
        log.warning("enrolling over plain http: the device secret crosses the network readable; use https")
    transport = HttpTransport(url, verify=verify)
    answer = transport.call("enrol", {"protocol": PROTOCOL, "code": code, "origin": me, "public_key": public_key,
                                      "name": name})
    SyncState(data_dir).save_remote(normal_url(url), kind, answer["device_id"], answer["secret"],
                                    answer.get("server_id"), answer.get("programs"))
    return {**answer, "plain_http": plain_http(url)}


def plain_http(url: str) -> bool:
    """True for an http:// address of another computer (the secret would cross the network in clear)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1")


def sync_once(target, url: str | None = None, credentials: dict | None = None, progress=None,
              transport=None) -> dict:
    """One full sync with a remote (the central server unless `url` names another); a summary dict.

    `target` is a data folder (or a (db, data_dir) pair). `credentials` is
    {"device_id", "secret"}; by default those saved at enrolment are used. `progress(event, n)`
    is called after each batch.
    """
    data_dir, db, own = _open(target)
    state = SyncState(data_dir)
    try:
        remote = credentials or state.remote(url)
        if remote is None:
            raise SyncError("unenrolled", "no central server is enrolled: run `kiosk enrol URL CODE`")
        if not (url or remote.get("url")):
            raise SyncError("bad_request", "which server? give a URL")
        url = normal_url(url or remote["url"])
        transport = transport or HttpTransport(url, remote["device_id"], remote["secret"],
                                               verify=verify_for(data_dir, url))
        run = state.start_run(url)
        try:
            summary = Session(db, data_dir, transport, state, url, progress).run()
        except SyncError as exc:
            state.finish_run(run, False, reason=exc.reason, error=str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - recorded for the sync page, then re-raised
            state.finish_run(run, False, reason="server_error", error=repr(exc))
            raise
        state.finish_run(run, True, summary["pushed"], summary["pulled"], offset=summary["clock_offset_s"])
        log.info("sync", extra={"act": "sync", "remote": urlsplit(url).netloc, "pushed": summary["pushed"],
                                "pulled": summary["pulled"]})
        return summary
    finally:
        if own:
            db.close()


def _open(target):
    if isinstance(target, tuple):
        db, data_dir = target
        return Path(data_dir), db, False
    data_dir = Path(target)
    return data_dir, open_data_dir(data_dir), True


class Session:
    """One sync run of one kiosk database with one remote."""

    MAX_RESTARTS = 5

    def __init__(self, db, data_dir, transport, state=None, url="", progress=None):
        self.db, self.data_dir, self.transport = db, Path(data_dir), transport
        self.state, self.url, self.progress = state, url, progress or (lambda event, n: None)
        self.summary = {"pushed": 0, "pulled": 0, "programs": {}, "clock_offset_s": None, "rotated": []}
        self.their_keys: set[str] = set()
        self.own_limit = state.central_limit() if state else None  # what central enrolled us for
        remote = state.remote(url) if state and url else None
        self.to_peer = bool(remote and remote["kind"] == "peer")
        self.their_limit: list[str] | None = None  # what a peer says it may hold (from its hello)

    def run(self) -> dict:
        programs = self.hello(keys=not self.to_peer)  # a peer's limit is known only from its answer
        for program_id, theirs in programs.items():
            self.sync_program(program_id, theirs)
        if set(programkeys.shareable(self.db, programs)) - self.their_keys:
            self.hello(keys=True)  # they hold the program's row now and can check the key we hand over
        return self.summary

    def hello(self, keys: bool = True) -> dict[str, dict]:
        """Vectors both ways, and program keys both ways (each side keeps only keys it can check
        against the program's row, see kiosk.trust.programkeys); revocations both ways. Only the
        programs both sides may hold are synced, and only their keys handed over: within what
        central enrolled this kiosk for, and the limit a peer answers."""
        local = self.shared(changes.local_programs(self.db))
        mine = {pid: changes.vector(self.db, pid) for pid in local}
        answer = self.transport.call("hello", {"protocol": PROTOCOL, "origin": device_id(self.db), "programs": mine,
                                               "program_keys": programkeys.shareable(self.db, local) if keys else {},
                                               "revocations": revocations.entries(self.db), "limit": self.own_limit})
        if self.state:  # before anything is pushed: what a revoked origin made after is held back
            revocations.take(self.db, self.state, answer.get("revocations"))
        self.summary["clock_offset_s"] = answer.get("clock_offset_s")
        self.summary["server_id"] = answer.get("server_id")
        self.their_limit = answer.get("limit") if isinstance(answer.get("limit"), list) else None
        their_keys = answer.get("program_keys") if isinstance(answer.get("program_keys"), dict) else {}
        self.their_keys = set(their_keys)
        programkeys.offered(self.db, {pid: k for pid, k in their_keys.items() if pid in self.shared([pid])},
                            via=self.url or "sync")
        programs = answer.get("programs", {})
        return {pid: programs[pid] for pid in self.shared(programs)}

    def shared(self, program_ids) -> list[str]:
        """Those of `program_ids` this kiosk may hold and the other side may too."""
        allowed = within(self.own_limit, self.their_limit)
        return sorted(p for p in program_ids if allowed is None or p in allowed)

    def sync_program(self, program_id: str, theirs: dict) -> None:
        for _ in range(self.MAX_RESTARTS):
            try:
                if replica.own_origin_ahead(self.db, program_id, theirs) or not self.own_head_matches(program_id, theirs):
                    self.recover(program_id, device_id(self.db), theirs)
                theirs = self.push(program_id, theirs)
                self.pull(program_id)
                self.summary["programs"][program_id] = changes.vector(self.db, program_id)
                return
            except SyncError as exc:
                if exc.reason == "seq_gap":
                    theirs = self.hello().get(program_id, {})
                elif exc.reason == "origin_mismatch" and self.diverged(program_id, theirs):
                    theirs = self.hello().get(program_id, {})
                else:
                    raise
        raise SyncError("server_error", f"program {program_id} did not converge after {self.MAX_RESTARTS} tries")

    def push(self, program_id: str, theirs: dict) -> dict:
        """Sends what the remote lacks, one acknowledged batch at a time; returns its last vector."""
        while True:
            try:
                pending, _more = changes.batch_since(self.db, program_id, theirs, limit=500)
            except ChangeError as exc:
                raise SyncError(exc.reason, str(exc)) from None
            if not pending:
                return theirs
            batch = next(split_batches(pending))
            answer = self.transport.call("push", {
                "protocol": PROTOCOL, "program_id": program_id, "changes": batch,
                "keys": changes.keys_for(self.db, [c["origin"] for c in batch])})
            acked = answer["vector"]
            if not any(acked.get(c["origin"], 0) >= c["seq"] for c in batch):
                raise SyncError("bad_request", "the remote did not acknowledge the batch")
            theirs = acked
            self.summary["pushed"] += len(batch)
            if self.state:
                self.state.set_acked(self.url, program_id, acked)
            self.progress("pushed", len(batch))

    def pull(self, program_id: str) -> None:
        """Takes what we lack, applying each batch whole."""
        while True:
            try:
                answer = self.transport.call("pull", {"protocol": PROTOCOL, "program_id": program_id,
                                                      "vector": changes.vector(self.db, program_id)})
            except SyncError as exc:
                if exc.reason == "unknown_program":
                    return
                raise
            batch = answer["changes"]
            if batch:
                self.summary["pulled"] += replica.apply_batch(self.db, program_id, batch, answer.get("keys"))
                self.progress("pulled", len(batch))
            if self.state:
                self.state.set_acked(self.url, program_id, answer["vector"])
            if not answer.get("more") or not batch:
                return

    def own_head_matches(self, program_id: str, theirs: dict) -> bool:
        """Is the remote's last change of our own origin the one we hold under that seq?

        A kiosk restored from a backup (with its device id file) writes new changes under seqs
        the remote already holds from before the restore; this is how we notice.
        """
        me = device_id(self.db)
        seq = theirs.get(me, 0)
        if not seq or changes.vector_seq(self.db, program_id, me) < seq:
            return True
        answer = self.transport.call("pull", {"protocol": PROTOCOL, "program_id": program_id,
                                              "vector": {**theirs, me: seq - 1}, "limit": 50})
        head = [c for c in answer["changes"] if c["origin"] == me and c["seq"] == seq]
        return not head or same_change(head[0], changes.stored_change(self.db, program_id, me, seq))

    def diverged(self, program_id: str, theirs: dict) -> bool:
        """After "origin_mismatch": does the remote hold another history of one of our origins?"""
        for origin, seq in changes.vector(self.db, program_id).items():
            if seq > 0 and theirs.get(origin, 0) > 0 and self.recover(program_id, origin, theirs):
                return True
        return False

    def recover(self, program_id: str, origin: str, theirs: dict) -> bool:
        """Compares the remote's history of `origin` with ours; adopts theirs where they differ."""
        floor = min(self.state.acked(self.url, program_id).get(origin, 0) if self.state else 0,
                    changes.vector_seq(self.db, program_id, origin))
        probe = {**theirs, origin: floor}
        theirs_changes = []
        while True:
            answer = self.transport.call("pull", {"protocol": PROTOCOL, "program_id": program_id,
                                                  "vector": probe, "limit": 2000})
            mine = [c for c in answer["changes"] if c["origin"] == origin]
            theirs_changes += mine
            replica.remember_keys(self.db, answer.get("keys"))
            if not answer.get("more") or not mine:
                break
            probe[origin] = max(c["seq"] for c in mine)
        if theirs_changes and not changes.signed_by_origin(self.db, program_id, origin, theirs_changes):
            raise SyncError("bad_signature", f"the remote's history of {origin} is not signed by {origin}")
        split = replica.first_divergence(self.db, program_id, origin, theirs_changes)
        mine_top = changes.vector_seq(self.db, program_id, origin)
        if split is None and origin == device_id(self.db) and theirs.get(origin, 0) > mine_top:
            split = mine_top + 1  # they hold more of our stream: we are a restored backup
        if split is None:
            return False
        new_id = replica.adopt_their_history(self.db, self.data_dir, program_id, origin, split)
        log.warning("remote holds another history of %s from seq %d: now writing as %s", origin, split, new_id)
        self.summary["rotated"].append({"old": origin, "new": new_id, "from_seq": split})
        return True
