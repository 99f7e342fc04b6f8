"""Camera frames from tablets without `BarcodeDetector` (iOS Safari): decoded on the laptop."""

import io

import zxingcpp
from PIL import Image, UnidentifiedImageError

from kiosk.errors import KioskError

MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
# What a camera frame may be: Pillow opens dozens of formats, each a parser open to anyone logged in.
FRAME_FORMATS = ("JPEG", "PNG", "WEBP")
FRAME_MIMETYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


class FrameError(KioskError):
    """A camera frame that cannot be read."""


def decode_frame(data: bytes) -> list[str]:
    """The QR texts in a JPEG/PNG/WebP camera frame (empty when none is in view)."""
    if not data:
        raise FrameError("empty_frame", "no image was sent")
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError("frame_too_large", "a camera frame must be under 2 MB")
    try:
        image = Image.open(io.BytesIO(data), formats=FRAME_FORMATS)
        if image.width * image.height > MAX_PIXELS:
            raise FrameError("frame_too_large", "a camera frame must be under 16 megapixels")
        image = image.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise FrameError("bad_image", "not a JPEG, PNG or WebP image") from None
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.text for r in found if r.valid]
