"""Revocations that travel: what the central server says about a revoked device, and how a kiosk
learns it, keeps it and hands it on.

When a coordinator revokes a device, central records, for each origin the device wrote as, the
last change of each program it had accepted from it (`through`). Nothing after that is accepted,
whoever brings it: the device itself, an honest laptop relaying it, a USB bundle. Central signs
the statement with its own origin key, so a kiosk can check it whoever hands it over:

    {"kind": KIND, "signer": central's id, "origin": ..., "device": ..., "revoked_at": ...,
     "through": {program_id: seq}}   +   "sig" (Ed25519 of the canonical JSON), "key" (central's public key)

A kiosk keeps a statement only if it is signed by a central server it is enrolled with (its
id proves its key, `kiosk.trust.keys`). It learns them in central's answer to `hello`, and from
paired laptops in both directions of their `hello`; from then on it refuses those changes on
every path (`kiosk.store.changes`), holds them back from what it sends, and unpairs a laptop
that said it writes as a revoked origin.
"""

from __future__ import annotations

import json

from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.store.validator import ROW_ID
from kiosk.trust import keys
from sync.protocol import dumps

KIND = "attendance-kiosk revocation"
MAX_ENTRIES = 10_000


def signed(signer: keys.Signer, origin: str, device: str, revoked_at: str, through: dict[str, int]) -> dict:
    """A revocation statement signed by central (`signer`), as it travels."""
    statement = {"kind": KIND, "signer": signer.origin, "origin": origin, "device": device,
                 "revoked_at": revoked_at, "through": {pid: int(seq) for pid, seq in sorted(through.items())}}
    return {"statement": statement, "sig": signer.sign_bytes(dumps(statement)), "key": signer.public_key}


def checked(entry, signers: set[str]) -> dict | None:
    """The statement of `entry` if it is well formed and signed by one of `signers`, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("statement"), dict):
        return None
    statement = entry["statement"]
    if statement.get("kind") != KIND or statement.get("signer") not in signers or not _shaped(statement):
        return None
    if not keys.certifies(statement["signer"], entry.get("key")):
        return None
    return statement if keys.verify_bytes(entry["key"], dumps(statement), entry.get("sig")) else None


def _shaped(statement: dict) -> bool:
    through = statement.get("through")
    return (isinstance(statement.get("origin"), str) and bool(ROW_ID.fullmatch(statement["origin"]))
            and isinstance(statement.get("revoked_at"), str) and len(statement["revoked_at"]) <= 40
            and isinstance(through, dict) and len(through) <= 10_000
            and all(isinstance(p, str) and type(s) is int and 0 <= s < 2 ** 62 for p, s in through.items()))


def learn(db, entries, signers: set[str]) -> list[str]:
    """Keeps the statements of `entries` signed by one of `signers` that are new here; their
    origins. Malformed or foreign entries are left out."""
    if not isinstance(entries, list) or not signers:
        return []
    found = [(e, s) for e in entries[:MAX_ENTRIES] if (s := checked(e, signers)) is not None]
    new = [(e, s) for e, s in found if not changes.revocation_held(db, s["origin"])]
    if new:
        with transaction(db):
            for entry, statement in new:
                changes.keep_revocation(db, statement["origin"], statement["through"], json.dumps(entry))
    return [s["origin"] for _, s in new]


def take(db, state, entries) -> list[str]:
    """Learns the statements `entries` carries (those signed by a central server `state` is
    enrolled with) and unpairs the paired laptops that write as a revoked origin; the origins
    new here."""
    learned = learn(db, entries, trusted_signers(state))
    if learned:
        state.revoke_clients_writing_as(changes.revoked_origin_ids(db))
    return learned


def entries(db) -> list[dict]:
    """Every statement this kiosk holds, as it travels (for a paired laptop's `hello`)."""
    return [json.loads(text) for text in changes.revocation_entries(db)]


def trusted_signers(state) -> set[str]:
    """The central servers this kiosk is enrolled with (`sync.state.SyncState`): whose statements count."""
    return {r["server_id"] for r in state.remotes() if r["kind"] == "central" and r["server_id"]}


def hold_back(batch: list[dict], cutoffs: dict[str, int], held: dict[str, int] | None = None) -> tuple[list[dict], int]:
    """`batch` (one program's changes) without those of revoked origins past their cutoff; and
    how many were left out. With `held` (origin -> seq held here), a revoked origin's run that
    would now end on a change whose signature the batch does not carry is cut back to its last
    signed one (the rest is central's to hand out)."""
    kept = [c for c in batch if c["origin"] not in cutoffs or c["seq"] <= cutoffs[c["origin"]]]
    if held is not None:
        for origin in {c["origin"] for c in kept} & set(cutoffs):
            fresh = [c for c in kept if c["origin"] == origin and c["seq"] > held.get(origin, 0)]
            signed_end = max((c["seq"] for c in fresh if c.get("sig")), default=held.get(origin, 0))
            kept = [c for c in kept if c["origin"] != origin or c["seq"] <= signed_end]
    return kept, len(batch) - len(kept)
