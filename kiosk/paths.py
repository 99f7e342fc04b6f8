"""Where the kiosk finds its bundled files and keeps its data."""

import os
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    """The folder of bundled `static`, `templates` or `translations` files.

    A source checkout keeps them at the top of the repository; a wheel carries them inside the
    package.
    """
    checkout = PACKAGE.parent / name
    return checkout if checkout.is_dir() else PACKAGE / name


def default_data_dir() -> Path:
    """The per-user data folder used when neither `--data` nor `KIOSK_DATA` is given."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "attendance-kiosk"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: the explicit one, else `KIOSK_DATA`, else the per-user default; created."""
    chosen = Path(explicit or os.environ.get("KIOSK_DATA") or default_data_dir())
    chosen.mkdir(parents=True, exist_ok=True)
    make_private(chosen)
    return chosen


def make_private(folder: str | os.PathLike) -> None:
    """The folder 0700 and the files directly in it 0600: names, keys and the database are the owner's.

    On Windows, modes do not apply: the folder gets an access list of its own (inheritance cut,
    full control for this user and SYSTEM only, inherited by everything inside), see `windows_acl`.
    """
    if os.name == "nt":
        import subprocess
        command = windows_acl(Path(folder), os.environ.get("USERNAME", ""))
        if command:
            subprocess.run(command, check=False, capture_output=True)
        return
    if os.name != "posix":
        return
    folder = Path(folder)
    os.chmod(folder, 0o700)
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)


def windows_acl(folder: Path, user: str) -> list[str]:
    """The `icacls` command that makes a folder private on Windows: no inherited entries (a folder
    outside the user's profile, such as C:\\kiosk, otherwise lets every local user read it), and
    full control for `user` and SYSTEM, inherited by the files and folders inside.

    Not exercised on Windows by the tests here (they run on Linux); the command is checked."""
    if not user:
        return []  # nobody to grant to: cutting inheritance would lock the owner out
    grants = [f"{name}:(OI)(CI)F" for name in (user, "*S-1-5-18")]  # S-1-5-18: SYSTEM, in any language
    return ["icacls", str(folder), "/inheritance:r", *[arg for g in grants for arg in ("/grant:r", g)]]


def write_atomically(path: str | os.PathLike, data: bytes | str, mode: int = 0o600) -> Path:
    """Writes `data` to a temporary file beside `path`, then renames it into place.

    A reader sees the old file or the whole new one, never half, even after a power cut; the file
    is private (`mode`).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=out.suffix + ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename: a pulled USB stick keeps the old file or the new
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out


SERVE_LOCK = "serve.lock"


class FolderBusy(Exception):
    """Another process serves this data folder (it holds DATA/serve.lock)."""


def hold_folder(folder: str | os.PathLike):
    """Takes the data folder's serve lock for as long as the returned file stays open (the OS
    releases it when the process ends, even after kill -9); raises FolderBusy if another process
    holds it. `kiosk serve` holds it while it runs, and `kiosk restore` takes it for a moment."""
    path = Path(folder) / SERVE_LOCK
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
    try:
        if sys.platform == "win32":
            import msvcrt
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise FolderBusy(str(folder)) from None
    return handle
