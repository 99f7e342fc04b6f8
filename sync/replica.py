"""A kiosk database as a sync replica: which programs it holds, applying a received batch whole,
and recovering when another replica holds a different history for one of our origins.
"""


from kiosk.store import changes
from kiosk.store.changes import ChangeError
from kiosk.store.db import device_id, rotate_device_id, transaction
from sync import revocations
from sync.protocol import SyncError, same_change


def apply_batch(db, program_id: str, batch: list[dict], keys: dict | None = None) -> int:
    """Applies a batch whole in one transaction (with its vector advance); returns how many were new.

    `keys` are the public keys of the batch's origins (each proven by its origin id); each
    origin's new run must be signed by its origin, checked at its end and its checkpoints
    ("bad_signature" otherwise; `kiosk.store.changes.apply_received`).

    A change we already hold must be identical ("origin_mismatch" otherwise); a gap refuses the
    whole batch ("seq_gap"). Nothing is applied unless everything is.
    """
    try:
        with transaction(db):
            changes.remember_keys(db, keys)
            return changes.apply_received(db, program_id, batch)
    except ChangeError as exc:
        raise SyncError(exc.reason, str(exc)) from None


def held_back(db, program_id: str, batch: list[dict]) -> tuple[list[dict], int]:
    """A bundle's batch without the changes of revoked origins past their cutoff (and how many
    were left out), cut so that what remains of such an origin still ends on a signed change."""
    cutoffs = changes.revoked_cutoffs(db, program_id)
    if not cutoffs:
        return batch, 0
    return revocations.hold_back(batch, cutoffs, {o: changes.vector_seq(db, program_id, o) for o in cutoffs})


def remember_keys(db, keys: dict | None) -> None:
    """Keeps the origins' public keys another replica sent (each proven by its origin id)."""
    try:
        with transaction(db):
            changes.remember_keys(db, keys)
    except ChangeError as exc:
        raise SyncError(exc.reason, str(exc)) from None


def first_divergence(db, program_id: str, origin: str, theirs: list[dict]) -> int | None:
    """The first seq at which another replica's changes of `origin` differ from ours, or None."""
    for change in sorted(theirs, key=lambda c: c["seq"]):
        held = changes.stored_change(db, program_id, origin, change["seq"])
        if held is None:
            return None
        if not same_change(change, held):
            return change["seq"]
    return None


def adopt_their_history(db, data_dir, program_id: str, origin: str, from_seq: int) -> str:
    """Another replica holds a different history of `origin` from `from_seq` on: theirs wins.

    This happens to a kiosk restored from an older backup (it wrote new changes under seqs the
    world had already seen). Our divergent changes are dropped from the log and re-issued under
    a fresh device id, so nothing is lost; the other history then arrives by pull. Returns the
    new device id.
    """
    with transaction(db):
        new_id = rotate_device_id(db, data_dir) if origin == device_id(db) else device_id(db)
        ours = changes.take_back(db, program_id, origin, from_seq)
        for change in ours:
            payload = {k: v for k, v in change["payload"].items() if k != "_base"}
            changes.write(db, program_id, change["entity"], change["id"], payload, op=change["op"])
    return new_id


def own_origin_ahead(db, program_id: str, theirs: dict[str, int]) -> bool:
    """True if another replica has seen more of our own stream than we hold: we are a restored backup."""
    me = device_id(db)
    return theirs.get(me, 0) > changes.vector_seq(db, program_id, me)


