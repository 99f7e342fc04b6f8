"""HTTPS for both servers: waitress speaks no TLS, so a small asyncio relay terminates TLS (with the
certificates of `kiosk.ops.tls`) and pipes each connection to waitress on a private loopback
port. Pure Python: it runs on Windows too."""

import asyncio
import socket
import ssl
import threading
from pathlib import Path

from kiosk.ops.tls import lan_addresses, server_certificate


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
