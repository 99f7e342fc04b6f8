"""Camera scanning in real Chromium: a fake camera shows a printed badge, the page checks it in.

Desktop Chromium has no BarcodeDetector, so this also exercises the path iOS Safari takes:
frames are posted to /api/decode and read on the kiosk with zxing-cpp.
"""

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from kiosk.badges.drawing import badge_png
from kiosk.badges.issuing import badge_card
from kiosk.trust import accounts as auth

from support import log_in

pytestmark = pytest.mark.browser


def write_y4m(image: Image.Image, path, size=(640, 480)) -> None:
    """One 4:2:0 frame in the YUV4MPEG2 format Chromium's fake camera plays in a loop."""
    frame = Image.new("RGB", size, "white")
    image.thumbnail((size[0] - 40, size[1] - 40))
    frame.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (size[0] // 2, size[1] // 2)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        f.write(b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes())


def test_the_camera_reads_a_badge_and_checks_the_person_in(db, open_event, accounts, kiosk_server, chromium,
                                                          tmp_path):
    event = open_event
    person = event["people"][0]
    badge = badge_png(badge_card({**person, "program_id": event["program_id"]}, person["code"],
                                 {"title": "รุ่นที่ 1"}, event["program"]))
    video = tmp_path / "badge.y4m"
    write_y4m(badge, video)
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"]
    server = kiosk_server()
    browser = chromium(extra_args=camera)
    page = browser.new_page()
    log_in(page, server, lang="en")
    page.goto(f"{server.url}/scan?lang=en")
    page.click("#camera-toggle")
    result = page.locator("#scan-result")
    expect(result).to_have_class(re.compile(r"\bok\b"), timeout=15_000)
    expect(page.locator("#result-name")).to_have_text("นางสาวสมหญิง ใจดี")
    browser.close()
    assert db.execute("select count(*) from attendance").fetchone()[0] == 1


def test_decode_endpoint_reads_frames_and_refuses_bad_ones(client, db, event):
    import io

    auth.add_user(db, "chief", "coordinator", "password123")
    token = auth.issue_token(db, "chief")
    person = event["people"][0]
    frame = io.BytesIO()
    badge_png(badge_card({**person, "program_id": event["program_id"]}, person["code"], None,
                         event["program"])).save(frame, "JPEG", quality=80)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
    answer = client.post("/api/decode", data=frame.getvalue(), headers=headers)
    assert answer.json == {"ok": True, "codes": [person["code"]]}
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), "white").save(blank, "PNG")
    assert client.post("/api/decode", data=blank.getvalue(), headers=headers).json == {"ok": True, "codes": []}
    for body, status, reason in ((b"", 400, "empty_frame"), (b"not an image", 400, "bad_image"),
                                 (b"\xff" * (3 * 1024 * 1024), 413, "frame_too_large")):
        answer = client.post("/api/decode", data=body, headers=headers)
        assert (answer.status_code, answer.json["reason"]) == (status, reason)
    assert client.post("/api/decode", data=frame.getvalue()).status_code == 401


@pytest.mark.parametrize("kind", ["BMP", "GIF", "TIFF", "PPM", "ICO"])
def test_a_frame_in_any_format_but_jpeg_png_or_webp_is_refused_unopened(kind):
    import io

    from kiosk.door import camera

    frame = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(frame, kind)
    with pytest.raises(camera.FrameError) as refused:
        camera.decode_frame(frame.getvalue())
    assert refused.value.reason == "bad_image"
    webp = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(webp, "WEBP")
    assert camera.decode_frame(webp.getvalue()) == []
