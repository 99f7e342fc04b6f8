"""HTTPS for both servers: waitress speaks no TLS, so a small asyncio relay terminates TLS (with the
certificates of `kiosk.ops.tls`) and pipes each connection to waitress on a private loopback
port. Pure Python: it runs on Windows too.

The relay bounds what a client can hold (`kiosk.webkit.connections`): its listening socket counts
connections per client before the TLS handshake, the handshake has HANDSHAKE_SECONDS, and a
request head that trickles is cut. Waitress behind it closes connections left idle.
"""

import asyncio
import socket
import ssl
import threading
from pathlib import Path

from kiosk.ops.tls import lan_addresses, server_certificate
from kiosk.webkit.connections import HANDSHAKE_SECONDS, WAITRESS_OPTIONS, ConnectionGuard, HeadClock, listener


def serve_https(app, host: str, port: int, folder: Path, threads: int = 8, guard: ConnectionGuard | None = None,
                **waitress_options) -> None:
    """Serves the app over HTTPS on host:port (waitress on a private loopback port behind TLS).

    The certificate is signed by the local CA of `folder` (`ca.pem`, installed once on tablets or
    given to kiosks); the kiosk and the central server serve HTTPS the same way. `guard` bounds
    the connections per client (default: `kiosk.webkit.connections`'s bounds).
    """
    from waitress import serve as waitress_serve

    cert, key = server_certificate(Path(folder), [socket.gethostname(), "localhost"], ["127.0.0.1", *lan_addresses()])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend_port = backend.getsockname()[1]
    backend.close()
    guard = guard or ConnectionGuard()
    threading.Thread(target=_run_relay, args=(host, port, backend_port, context, guard), daemon=True).start()
    options = {**WAITRESS_OPTIONS, "ident": "kiosk", **waitress_options}
    waitress_serve(app, host="127.0.0.1", port=backend_port, threads=threads, url_scheme="https", **options)


async def _pipe(reader, writer, note=None) -> None:
    """Copies one direction until either side ends; `note(data)` False cuts the connection."""
    try:
        while data := await reader.read(65536):
            if note is not None and note(data) is False:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _relay(host: str, port: int, backend_port: int, context: ssl.SSLContext, guard: ConnectionGuard) -> None:
    async def handle(client_reader, client_writer):
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            client_writer.close()
            return
        head = HeadClock()
        await asyncio.gather(_pipe(client_reader, backend_writer, head.received),
                             _pipe(backend_reader, client_writer, head.sent))

    # the guarded socket admits a client before its TLS handshake, which then has HANDSHAKE_SECONDS
    server = await asyncio.start_server(handle, sock=listener(host, port, guard, watch_heads=False), ssl=context,
                                        ssl_handshake_timeout=HANDSHAKE_SECONDS)
    async with server:
        await server.serve_forever()


def _run_relay(*args) -> None:
    """The relay's event loop: a selector loop on every system, whose accept goes through the
    guarded socket (Windows' default proactor loop would accept around it)."""
    loop = asyncio.SelectorEventLoop()
    try:
        loop.run_until_complete(_relay(*args))
    finally:
        loop.close()
