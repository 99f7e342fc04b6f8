"""Sync between kiosks, the central server, and USB bundles (DESIGN.md "Sync").

The public API for the kiosk:

* `sync_once(data_dir, url=None)` - one sync now (client.py);
* `enrol(data_dir, url, code)`    - exchange a one-time code for a device secret;
* `Syncer(app_or_data_dir)`       - the background thread that syncs every minute;
* `status(data_dir)`              - what the coordinator's sync page shows;
* `register(cli)`                 - the click commands (cli.py).
"""

from sync.client import enrol, sync_once
from sync.protocol import PROTOCOL, SyncError
from sync.syncer import Syncer, status


def register(cli_group) -> None:
    """Adds the sync commands to the `kiosk` click group."""
    from sync.cli import register as _register
    _register(cli_group)


__all__ = ["PROTOCOL", "SyncError", "Syncer", "enrol", "register", "status", "sync_once"]
