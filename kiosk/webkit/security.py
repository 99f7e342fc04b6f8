"""Security every answer of both web apps carries: headers (a strict CSP, no framing, no-store),
the bound on url-encoded forms, and the bound on the nesting of JSON bodies."""

from flask import request
from flask.json.provider import DefaultJSONProvider

from kiosk.safejson import check_depth

# A multipart form field, or a whole url-encoded form, larger than this is refused 413: no title,
# name or note is near it, and a 10 MB title would make every page that shows it 10 MB.
MAX_FORM_MEMORY_SIZE = 256 * 1024
FORM_MIMETYPE = "application/x-www-form-urlencoded"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))


def install_security_headers(app, cacheable=frozenset({"static", "font"})) -> None:
    """Security headers on every answer of `app`: a CSP with no inline script or style and
    `frame-ancestors 'none'`, `nosniff`, no framing, no referrer, and `Cache-Control: no-store`
    on everything but the `cacheable` endpoints (pages and APIs carry names).
    """

    def headers(response):
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        if request.endpoint in cacheable:
            return response
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"  # what the lines below make of no header
        else:
            response.cache_control.no_store = True
            response.cache_control.max_age = None
            response.cache_control.public = False
        return response

    app.after_request(headers)


def install_form_limit(app) -> None:
    """Bounds url-encoded forms to MAX_FORM_MEMORY_SIZE in all (413 before any view reads them).

    Werkzeug applies MAX_FORM_MEMORY_SIZE to multipart fields only: a url-encoded body is read
    whole, so without this it is bounded only by MAX_CONTENT_LENGTH (or not at all).
    """

    def bound():
        if request.mimetype == FORM_MIMETYPE:
            request.max_content_length = MAX_FORM_MEMORY_SIZE

    app.before_request(bound)


class DepthCheckedJSON(DefaultJSONProvider):
    """Flask's JSON, refusing a body nested too deeply before parsing it (`kiosk.safejson`): the
    TooDeep it raises is a ValueError, which `request.get_json(silent=True)` turns into None, so
    every view answers its own `bad_json`."""

    def loads(self, s, **kwargs):
        check_depth(s)
        return super().loads(s, **kwargs)


def install_json_limit(app) -> None:
    """Every JSON body `app` parses is depth-checked first (the tablet's form, the API)."""
    app.json = DepthCheckedJSON(app)
