"""Free disk space: a warning on the health page, and writes refused before the disk is full.

SQLite survives a full disk without corruption (the write fails and rolls back), but the error
reaches the door as a crash. Below REFUSE_BYTES every write transaction is refused up front with
the `disk_full` reason, which says what to do; the database stays as it was.
"""

from __future__ import annotations

import os
import shutil

from kiosk.errors import KioskError

WARN_BYTES = 500 * 1024 * 1024
REFUSE_BYTES = 64 * 1024 * 1024


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes for this account on the file system holding `path`."""
    return shutil.disk_usage(path).free


def ensure_room(path: str | os.PathLike) -> None:
    """Raises KioskError("disk_full") when the disk holding `path` has less than REFUSE_BYTES free."""
    if free_bytes(path) < REFUSE_BYTES:
        raise KioskError("disk_full")
