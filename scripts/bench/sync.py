"""Benchmark: N simulated kiosks push concurrently to a real central server (waitress, HTTP, signed,
gzip), on SQLite and on PostgreSQL 15; prints JSON.

The ceiling is the same change rows inserted by one plain bulk INSERT (executemany in one
transaction, through the server's own insert path) into a scratch table of the same shape as
`changes` (primary key and index included), in the same database, in the same run, measured before
and after the pushes; the higher of the two counts.

    .venv/bin/python scripts/bench/sync.py [--kiosks 20] [--participants 2000] [--scans 4000]
                                           [--backends sqlite,postgresql] [--postgresql URL]

PostgreSQL is a throwaway 15 cluster started for the run (fsync on, as in production), or the
empty database at `--postgresql URL` (postgresql+psycopg://…).
"""

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import MetaData  # noqa: E402

from kiosk.clock import format_hlc  # noqa: E402
from kiosk.trust import keys
from sync import auth  # noqa: E402
from sync.central.storage import Storage, _dump  # noqa: E402
from sync.central.storage import changes as changes_table
from sync.protocol import PROTOCOL, encode_body, split_batches  # noqa: E402

from support import CentralServer, PostgresCluster  # noqa: E402


def signed(signer: keys.Signer, rows: list[dict]) -> list[dict]:
    """Chains and signs an origin's changes in seq order, as kiosk.store.changes does."""
    chain = None
    for change in rows:
        chain = keys.next_chain(chain, change)
        change["sig"] = signer.sign(chain)
    return rows


def kiosk_changes(program_id, signer, cohort, sessions, participants, scans, start_ms) -> list[dict]:
    """A kiosk's change stream, shaped (and signed) exactly as kiosk.store.changes writes it."""
    out, seq, origin = [], 0, signer.origin

    def add(entity, entity_id, payload):
        nonlocal seq
        seq += 1
        out.append({"program_id": program_id, "origin": origin, "seq": seq, "entity": entity, "id": entity_id,
                    "op": "upsert", "payload": payload, "hlc": format_hlc(start_ms + seq, 0, origin)})
    people = [str(uuid.uuid4()) for _ in range(participants)]
    for i, person in enumerate(people):
        add("participants", person, {"cohort_id": cohort, "title": "นาย", "first_name": f"สมชาย{i}",
                                     "last_name": "ใจดี", "role": "participant", "province_code": "10",
                                     "phone": f"08{i:08d}", "status": "active", "registered_via": "roster",
                                     "_salt": secrets.token_hex(16)})  # sealed as kiosk.store.changes writes it
    for i in range(scans):
        add("scans", str(uuid.uuid4()), {"participant_id": people[i % participants],
                                         "session_id": sessions[(i // participants) % len(sessions)],
                                         "code": "A" * 20, "result": "checked_in", "direction": "in",
                                         "device_id": origin, "operator": "door", "at": "2026-03-01T02:00:00.000Z",
                                         "nonce": secrets.token_hex(8)})
    return signed(signer, out)


def setup_changes(program_id, signer, cohort, sessions) -> list[dict]:
    origin = signer.origin
    rows = [("programs", program_id, {"title": "bench"}),
            ("cohorts", cohort, {"number": 1})]
    rows += [("sessions", s, {"cohort_id": cohort, "day": f"2026-03-0{i + 1}"}) for i, s in enumerate(sessions)]
    return signed(signer, [{"program_id": program_id, "origin": origin, "seq": i + 1, "entity": e, "id": eid,
                            "op": "upsert", "payload": p, "hlc": format_hlc(1_700_000_000_000 + i, 0, origin)}
                           for i, (e, eid, p) in enumerate(rows)])


def push_all(base: str, device: str, secret: str, bodies: list[tuple[bytes, dict]], errors: list) -> None:
    session = requests.Session()
    for raw, headers in bodies:
        signed = {**headers, **auth.sign(device, secret, "POST", "/api/sync/push", raw)}
        response = session.post(base + "/api/sync/push", data=raw, headers=signed, timeout=300)
        if response.status_code != 200:
            errors.append(response.text[:200])
            return


def run_together(threads: list[threading.Thread]) -> float:
    """Starts the pushers together, waits for the last; the seconds that took."""
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def run_backend(name: str, url: str, work: Path, args) -> dict:
    storage = Storage(url)
    program_id, cohort = str(uuid.uuid4()), str(uuid.uuid4())
    sessions = [str(uuid.uuid4()) for _ in range(2)]
    coordinator = keys.Signer(keys.new_origin()[1])
    setup = setup_changes(program_id, coordinator, cohort, sessions)
    storage.push(program_id, setup, source="bench", keys={coordinator.origin: coordinator.public_key})
    kiosks = []
    for k in range(args.kiosks):
        signer = keys.Signer(keys.new_origin()[1])
        KEY_OF[signer.origin] = signer.public_key
        enrolled = storage.enrol(storage.create_enrol_code(), origin=signer.origin, public_key=signer.public_key)
        stream = kiosk_changes(program_id, signer, cohort, sessions, args.participants, args.scans,
                               1_700_000_100_000 + k * 10_000_000)
        bodies = [encode_body({"protocol": PROTOCOL, "program_id": program_id, "changes": b,
                               "keys": {signer.origin: signer.public_key}}) for b in split_batches(stream)]
        kiosks.append((enrolled["device_id"], enrolled["secret"], bodies, stream))
    total = sum(len(k[3]) for k in kiosks)
    values = ceiling_rows([c for k in kiosks for c in k[3]])
    before = bulk_insert_ceiling(storage, values)  # the ceiling is measured before and after the run
    server = CentralServer(work / f"{name}-central", url=url, threads=8).start()
    base, errors = server.url, []
    try:
        elapsed = run_together([threading.Thread(target=push_all, args=(base, o, s, b, errors))
                                for o, s, b, _ in kiosks])
    finally:
        server.kill()
    stored = storage.change_count() - len(setup)
    after = bulk_insert_ceiling(storage, values)
    ceiling = max(before, after)  # the higher of the two: the harder target
    rate = total / elapsed
    storage.close()
    checking = signature_check_seconds([k[3] for k in kiosks])
    return {"changes": total, "stored": stored, "errors": errors[:3], "seconds": round(elapsed, 2),
            "changes_per_s": round(rate), "signature_check_cpu_s": round(checking, 2),
            "signature_share_of_ingest": round(checking / elapsed, 3), "ceiling_rows_per_s": round(ceiling),
            "ceiling_before_after": [round(before), round(after)],
            "fraction_of_ceiling": round(rate / ceiling, 3)}


def signature_check_seconds(streams: list[list[dict]]) -> float:
    """CPU seconds (one core, in this process) of the signature work the server did on the pushed
    batches: the chain over every change, an Ed25519 check at each run's end and checkpoints."""
    started = time.process_time()
    for stream in streams:
        chain = None
        for batch in split_batches(stream):
            for change, check in zip(batch, keys.vouching(batch)):
                chain = keys.next_chain(chain, change, _dump(change["payload"]))
                if check:
                    keys.verify(KEY_OF[change["origin"]], chain, change["sig"])
    return time.process_time() - started


KEY_OF: dict[str, str] = {}  # origin -> public key, filled as the kiosks are made


def ceiling_rows(rows: list[dict]) -> list[dict]:
    """The change rows exactly as the central server stores them (canonical payload text)."""
    return [{"program_id": c["program_id"], "origin": c["origin"], "seq": c["seq"], "entity": c["entity"],
             "entity_id": c["id"], "op": c["op"], "payload": _dump(c["payload"]), "hlc": c["hlc"],
             "received_at": "2026-03-01T00:00:00.000Z", "received_from": c["origin"], "sig": c["sig"]} for c in rows]


def bulk_insert_ceiling(storage: Storage, values: list[dict]) -> float:
    """Rows/s of one plain bulk INSERT of the same change rows in one transaction.

    Fair by construction: the scratch table has the shape of `changes` (columns, primary key and
    the hlc index); it lives in the same database; the rows are the ones pushed, serialised the
    same way; and they go through the very executemany path the server writes its rows with.
    """
    scratch = changes_table.to_metadata(MetaData(), name="changes_ceiling")
    for index in scratch.indexes:
        index.name = index.name + "_ceiling"
    scratch.drop(storage.engine, checkfirst=True)
    scratch.create(storage.engine)
    try:
        started = time.perf_counter()
        with storage.write() as conn:
            storage.bulk_insert(conn, scratch, values)
        elapsed = time.perf_counter() - started
    finally:
        scratch.drop(storage.engine)
    return len(values) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=20)
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--scans", type=int, default=4000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgresql", metavar="URL",
                        help="an empty PostgreSQL database to use instead of a throwaway cluster")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    result = {"kiosks": args.kiosks, "participants_per_kiosk": args.participants, "scans_per_kiosk": args.scans,
              "cpus": os.cpu_count(), "targets": {"postgresql_changes_per_s": 5000, "fraction_of_ceiling": 0.3}}
    try:
        if "sqlite" in args.backends:
            result["sqlite"] = run_backend("sqlite", f"sqlite:///{work / 'central.db'}", work, args)
        if "postgresql" in args.backends and args.postgresql:
            result["postgresql"] = run_backend("postgresql", args.postgresql, work, args)
        elif "postgresql" in args.backends:
            if not PostgresCluster.installed():
                result["postgresql"] = {"skipped": "PostgreSQL 15 (initdb) is not installed"}
            else:
                cluster = PostgresCluster(fsync=True).start()  # durable, as in production
                try:
                    result["postgresql"] = run_backend("postgresql", cluster.url + "/postgres", work, args)
                finally:
                    cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
