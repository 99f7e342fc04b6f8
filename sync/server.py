"""The server side of the protocol as a Flask blueprint, shared by the central server and a kiosk
that serves its peers: reading bodies within limits, checking signatures, one error shape.

A backend object does the work: `lookup(device)`, `remember_nonce(device, nonce)`,
`enrol(body)`, `hello(device, offset, body)`, `push(device, offset, body)`,
`pull(device, offset, body)`; each returns a dict or raises SyncError.
"""

from flask import Blueprint, jsonify, request

from kiosk.webkit.errors import error_response
from sync import auth
from sync.protocol import MAX_ENROL_BYTES, MAX_REQUEST_BYTES, SyncError, decode_body

SIGNED = ("hello", "push", "pull")


def read_raw() -> bytes:
    """The request body's bytes, refused (413) before reading if longer than the limit."""
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BYTES:
        raise SyncError("payload_too_large", f"request of {length} bytes exceeds {MAX_REQUEST_BYTES}")
    raw = request.stream.read(MAX_REQUEST_BYTES + 1)
    if len(raw) > MAX_REQUEST_BYTES:
        raise SyncError("payload_too_large", f"request exceeds {MAX_REQUEST_BYTES} bytes")
    return raw


def make_blueprint(name: str, get_backend) -> Blueprint:
    """The sync API (`/api/sync/<endpoint>`) over the backend `get_backend()` returns."""
    bp = Blueprint(name, __name__, url_prefix="/api/sync")

    @bp.route("/<endpoint>", methods=["GET", "POST"])
    def api(endpoint):
        if endpoint not in ("enrol", *SIGNED):
            return error_response("not_found", f"no sync endpoint {endpoint}")
        if request.method != "POST":
            return error_response("method_not_allowed")
        try:
            answer = _handle(get_backend(), endpoint)
        except SyncError as exc:  # devices read the English detail; people read the sync page
            return error_response(exc.reason, str(exc), exc.status)
        return jsonify({"ok": True, **answer})

    return bp


def _handle(backend, endpoint: str) -> dict:
    raw = read_raw()
    if endpoint == "enrol":
        return backend.enrol(decode_body(raw, request.headers.get("Content-Encoding"), MAX_ENROL_BYTES))
    # A backend with `push_nonce` records a push's nonce in the transaction that applies it.
    deferred = endpoint == "push" and getattr(backend, "push_nonce", False)
    device, offset = auth.verify(request.headers, request.method, request.path, raw,
                                 backend.lookup, None if deferred else backend.remember_nonce)
    nonce = request.headers.get("X-Nonce")
    try:
        body = decode_body(raw, request.headers.get("Content-Encoding"))
    except SyncError:
        if deferred and not backend.remember_nonce(device, nonce):
            raise SyncError("replayed", "this request was already received") from None
        raise
    if deferred:
        return backend.push(device, offset, body, nonce=nonce)
    return getattr(backend, endpoint)(device, offset, body)
