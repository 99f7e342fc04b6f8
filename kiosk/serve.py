"""`kiosk serve`: waitress on the venue network, plain or behind a TLS relay, and the background work.

Waitress speaks no TLS, so for `--https` a small asyncio relay terminates TLS (with the kiosk's
own certificates, `kiosk.tls`) and pipes each connection to waitress on loopback; it is pure
Python and runs on Windows too.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import threading
from pathlib import Path

from kiosk.tls import server_certificate

def lan_addresses() -> list[str]:
    """This laptop's IPv4 addresses other than loopback, for tablets to open."""
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127."))


def serve(app, host: str, port: int, threads: int = 8, https: bool = False) -> None:
    """Starts the log and the background work of the app's data folder, then serves it until stopped."""
    from kiosk.ops import log

    log.configure(app.config["DATA_DIR"])
    start_background(app)
    if threading.current_thread() is threading.main_thread():  # only there can a signal be caught
        signal.signal(signal.SIGTERM, _stop)
    try:
        if https:
            serve_https(app, host, port, Path(app.config["DATA_DIR"]), threads)
        else:
            from waitress import serve as waitress_serve

            waitress_serve(app, host=host, port=port, threads=threads, ident="kiosk")
    finally:
        log.shutdown()  # the lines still queued reach the file


def _stop(_signum, _frame) -> None:
    """SIGTERM ends waitress's loop like Ctrl-C does, so that the log is flushed on the way out."""
    raise SystemExit(0)


def start_background(app) -> None:
    """The background syncer (every minute, once enrolled), backups (every 15 minutes, and after
    each session closes) and WAL checkpoints (every second, off the door's commits)."""
    from kiosk.db import Checkpointer
    from kiosk.ops.backup import BackupScheduler
    from sync import Syncer

    Checkpointer(app.config["DATABASE"]).start()
    Syncer(app).start()
    BackupScheduler(app.config["DATA_DIR"]).start()


def serve_https(app, host: str, port: int, folder: Path, threads: int = 8, **waitress_options) -> None:
    """Serves the app over HTTPS on host:port (waitress on a private loopback port behind TLS).

    The certificate is signed by the local CA of `folder` (`ca.pem`, installed once on tablets or
    given to kiosks); the kiosk and the central server serve HTTPS the same way.
    """
    from waitress import serve as waitress_serve

    cert, key = server_certificate(Path(folder), [socket.gethostname(), "localhost"], ["127.0.0.1", *lan_addresses()])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend_port = backend.getsockname()[1]
    backend.close()
    threading.Thread(target=lambda: asyncio.run(_relay(host, port, backend_port, context)), daemon=True).start()
    waitress_options.setdefault("ident", "kiosk")
    waitress_serve(app, host="127.0.0.1", port=backend_port, threads=threads, url_scheme="https", **waitress_options)


async def _pipe(reader, writer) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _relay(host: str, port: int, backend_port: int, context: ssl.SSLContext) -> None:
    async def handle(client_reader, client_writer):
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer))

    server = await asyncio.start_server(handle, host, port, ssl=context)
    async with server:
        await server.serve_forever()
