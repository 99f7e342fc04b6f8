"""Sync between kiosks, the central server, and USB bundles (DESIGN.md "Sync").

This module is the whole API the kiosk uses; the kiosk imports nothing else from `sync`:

* `sync_now(data_dir, url=None)`   - one sync now, after any running one (client.py, syncer.py);
* `enrol(data_dir, url, code)`     - exchange a one-time code for a device secret;
* `Syncer(app_or_data_dir)`        - the background thread that syncs every minute;
* `status(data_dir)`, `open_conflicts(data_dir)` - what the coordinator's sync page shows;
* `acknowledged(data_dir, program_id)` - what each remote acknowledged holding, and when;
* `export_bundle(db, path)`, `import_bundle(db, path)` - USB bundles of a kiosk;
* `register_peer(app)`             - serve the peer endpoints on the kiosk app;
* `register(cli)`                  - the click commands (cli.py).
"""

from sync.protocol import PROTOCOL, SyncError


def sync_now(data_dir, url: str | None = None) -> dict:
    """One sync with the central server (or `url`), waiting for a running one to finish first."""
    from sync.syncer import sync_now as _sync_now
    return _sync_now(data_dir, url)


def sync_once(target, url: str | None = None, **options) -> dict:
    """One sync without the per-folder lock (the CLI, tests); see `sync.client.sync_once`."""
    from sync.client import sync_once as _sync_once
    return _sync_once(target, url, **options)


def enrol(data_dir, url: str, code: str, name: str | None = None, kind: str = "central",
          ca: str | None = None) -> dict:
    """Exchanges a one-time code for a device secret and remembers the remote; `ca` is the
    remote's CA certificate file when it serves https with a local CA of its own."""
    from sync.client import enrol as _enrol
    return _enrol(data_dir, url, code, name, kind, ca)


def status(data_dir, probe: bool = False) -> dict:
    """The day-end view: last successful sync, changes waiting to go, reachability, conflicts."""
    from sync.syncer import status as _status
    return _status(data_dir, probe=probe)


def open_conflicts(data_dir, limit: int = 50) -> list[dict]:
    """Merge conflicts a coordinator has not reviewed yet, newest first."""
    from sync.syncer import open_conflicts as _open_conflicts
    return _open_conflicts(data_dir, limit)


def acknowledged(data_dir, program_id: str) -> list[dict]:
    """Each remote this kiosk synced a program with (url, kind), the vector it acknowledged and when."""
    from sync.state import SyncState
    return SyncState(data_dir).acks(program_id)


def export_bundle(db, path, programs: list[str] | None = None) -> dict:
    """Writes every change this kiosk holds (of `programs`, default all) into a USB bundle."""
    from sync.bundle import export_kiosk
    return export_kiosk(db, path, programs)


def import_bundle(db, path, trust_new: bool = False, program_key: str | None = None) -> dict:
    """Applies a USB bundle whole, in one transaction; a second import applies nothing.
    `program_key`: a program's key typed from paper, for a program this kiosk has no key of."""
    from sync.bundle import import_kiosk
    return import_kiosk(db, path, trust_new, program_key)


def register_peer(app) -> None:
    """Serves the peer sync endpoints (`/api/sync/…`) on the kiosk app."""
    from sync import peer
    peer.register(app)


def register(cli_group) -> None:
    """Adds the sync commands to the `kiosk` click group."""
    from sync.cli import register as _register
    _register(cli_group)


def __getattr__(name: str):
    if name == "Syncer":  # a class, imported on first use like the functions above
        from sync.syncer import Syncer
        return Syncer
    raise AttributeError(name)


__all__ = ["PROTOCOL", "SyncError", "Syncer", "acknowledged", "enrol", "export_bundle", "import_bundle", "open_conflicts",
           "register", "register_peer", "status", "sync_now", "sync_once"]
