"""QR codes as PNG images (pairing and enrolment codes shown on screen or written by the CLI)."""

import base64
import io

import qrcode


def qr_png(text: str) -> bytes:
    """A QR code of `text` as PNG bytes."""
    out = io.BytesIO()
    qrcode.make(text, box_size=8, border=4).save(out, format="PNG")
    return out.getvalue()


def qr_data_uri(text: str) -> str:
    """A QR code of `text` as a data: URI for an <img> (the CSP allows data: images)."""
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode()
