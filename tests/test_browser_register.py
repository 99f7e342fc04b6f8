"""Self-registration in real Chromium at 360×740 against a real server, and tablets losing the laptop.

A coordinator pairs the tablet from the kiosk; the walk-in types their area in Thai, gets a badge
whose QR (read back from the screen with zxing-cpp) the door checks in; the same person again is
asked "is this you?"; the tablet opens nothing else. Then the server is stopped mid-use: a
registration and two camera scans wait on the tablets and arrive exactly once, with the times
they were made, when it is back.
"""

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from kiosk.badges.codes import verify_code
from kiosk.clock import now_utc, parse_iso
from kiosk.trust import accounts as auth
from kiosk.trust.programkeys import program_keys

from support import wait_until

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESK = {"width": 1280, "height": 900}
# Android Chrome's BarcodeDetector, which desktop Chromium lacks: the test holds up the badges.
FAKE_DETECTOR = """
window.__codes = [];
window.BarcodeDetector = class {
  async detect() { const code = window.__codes.shift(); return code ? [{ rawValue: code }] : []; }
};
"""
CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def national_id(first12: str) -> str:
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return first12 + str((11 - total % 11) % 10)


@pytest.fixture
def venue(db, open_event, accounts, kiosk_server):
    """A real kiosk server whose session is open now, the door's accounts and a staff API token."""
    return kiosk_server(), open_event, db, auth.issue_token(db, "door")


def log_in(page, server, user, goto):
    page.goto(f"{server.url}/login?lang=en")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "password123")
    page.click("button.primary")
    page.goto(server.url + goto)


def pair(browser, server, event, lang="th"):
    """The coordinator pairs a tablet at 1280 px; returns the tablet's 360 px page on /register."""
    desk = browser.new_context(viewport=DESK)
    page = desk.new_page()
    log_in(page, server, "chief", f"/cohorts/{event['cohort_id']}/tablets")
    page.fill("input[name=label]", "โต๊ะหน้า 1")
    page.click("#pair-new")
    code = page.locator("#pair-code").inner_text()
    page.screenshot(path=str(ARTIFACTS / "register-pairing-1280.png"), full_page=True)
    desk.close()
    tablet = browser.new_context(viewport=PHONE, locale="th-TH", has_touch=True)
    page = tablet.new_page()
    page.goto(f"{server.url}/r/{code}?lang={lang}")
    page.goto(f"{server.url}/register?lang={lang}")
    expect(page.locator("#reg-form")).to_be_visible()
    return page


def pick(page, level, typed, option):
    page.locator(f"#f-{level}").click()
    page.locator(f"#f-{level}").press_sequentially(typed)
    choice = page.locator(f"#list-{level} li", has_text=option).first
    expect(choice).to_be_visible()
    choice.click()
    expect(page.locator(f"#code-{level}")).not_to_have_value("")


def fill_walk_in(page, first="สมศรี", last="มีสุข", phone="0891234567", nid=""):
    page.select_option("#f-title", "นางสาว")
    page.fill("#f-first_name", first)
    page.fill("#f-last_name", last)
    page.fill("#f-position", "กรรมการชุมชน")
    page.fill("#f-organization", "ชุมชนบ้านมั่นคง")
    pick(page, "province", "กรุงเท", "กรุงเทพมหานคร")
    pick(page, "district", "ดินแ", "ดินแดง")
    pick(page, "subdistrict", "รัชดา", "รัชดาภิเษก")
    page.fill("#f-phone", phone)
    if nid:
        page.locator("#f-national_id").press_sequentially(nid)
    page.check("#f-pdpa")


def decode_canvas(page) -> str:
    png = page.locator("#badge-qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "the QR on the screen does not decode"
    return found[0].text


def test_a_walk_in_registers_in_thai_and_the_door_checks_their_badge_in(venue, chromium):
    server, event, db, token = venue
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    page = pair(browser, server, event)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # CSP violations and script errors; refused requests (409, 403) are the test's own doing.
    page.on("console", lambda msg: msg.type == "error" and "Failed to load resource" not in msg.text
            and errors.append(msg.text))
    expect(page.locator(".reg-program")).to_have_text(event["program"]["title"])
    expect(page.locator(".reg-cohort")).to_contain_text("รุ่น")

    nid = national_id("110370012345")
    fill_walk_in(page, nid=nid)
    expect(page.locator("#nid-status")).to_have_text("เลขตรวจสอบถูกต้อง")
    page.screenshot(path=str(ARTIFACTS / "register-form-360.png"), full_page=True)
    page.click("#reg-send")
    expect(page.locator("#step-done")).to_be_visible()
    expect(page.locator("#done-banner")).to_have_text("ลงทะเบียนเรียบร้อย นี่คือบัตรของท่าน")
    expect(page.locator("#badge-name")).to_have_text("นางสาวสมศรี มีสุข")
    page.screenshot(path=str(ARTIFACTS / "register-badge-360.png"), full_page=True)
    code = decode_canvas(page)
    assert verify_code(code, program_keys(db)) == event["program_id"]
    box = page.locator("#badge-qr").bounding_box()
    assert box["width"] >= 280  # large enough to scan from the tablet and to photograph

    answer = requests.post(f"{server.url}/api/checkins", json={"code": code},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert (answer["status"], answer["participant"]["name"]) == ("checked_in", "นางสาวสมศรี มีสุข")
    person = db.execute("select registered_via, subdistrict_code, nid_last4, created_at from participants"
                        " where first_name = 'สมศรี'").fetchone()
    assert person[:3] == ("walk_in", "102602", nid[-4:])

    page.click("#done-next")  # the next person finds nothing of this one
    expect(page.locator("#step-form")).to_be_visible()
    expect(page.locator("#f-first_name")).to_have_value("")
    assert page.evaluate("history.length") <= 3
    assert page.evaluate("document.body.innerText").count("สมศรี") == 0

    fill_walk_in(page, first="สมศรี", last="มีสุข")  # the same name and phone again
    page.click("#reg-send")
    expect(page.locator("#step-match")).to_be_visible()
    expect(page.locator("#match-title")).to_be_focused()
    assert page.locator("#match-list li").all_inner_texts() == ["เบอร์โทรศัพท์ที่พิมพ์"]
    assert "มีสุข" not in page.locator("#step-match").inner_text()
    assert page.locator("#badge-qr").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "register-duplicate-360.png"), full_page=True)
    page.click("#match-desk")
    expect(page.locator("#step-desk")).to_be_visible()
    assert "สมศรี" not in page.evaluate("document.body.innerText")
    page.click("#desk-next")
    expect(page.locator("#f-first_name")).to_have_value("")
    assert db.execute("select count(*) from participants where first_name = 'สมศรี'").fetchone()[0] == 1

    for path in ("/", "/scan", "/users", f"/cohorts/{event['cohort_id']}", "/sync/", "/login"):
        assert page.goto(server.url + path).status == 403, path
    for path in ("/api/sessions", "/api/sync/vector", "/api/participants/search?q=สม"):
        response = page.request.get(server.url + path)
        assert (response.status, response.json()["reason"]) == (403, "tablet_only"), path
    assert page.request.post(f"{server.url}/api/checkins", data={"code": code}).status == 403
    assert errors == []

    wide = browser.new_context(viewport=DESK, storage_state=page.context.storage_state())
    desk_page = wide.new_page()
    desk_page.goto(f"{server.url}/register?lang=en")
    fill_walk_in(desk_page, first="Somchai", last="Jaidee", phone="0899999999")
    desk_page.screenshot(path=str(ARTIFACTS / "register-form-1280.png"), full_page=True)
    desk_page.click("#reg-send")
    expect(desk_page.locator("#done-banner")).to_have_text("You are registered. Here is your badge.")
    desk_page.screenshot(path=str(ARTIFACTS / "register-badge-1280.png"), full_page=True)
    browser.close()


def test_a_logged_out_browser_reaches_only_registration_and_login(venue, chromium):
    server, event, db, token = venue
    browser = chromium()
    page = browser.new_page(viewport=PHONE)
    assert page.goto(f"{server.url}/register?lang=en").status == 403
    expect(page.locator("h1")).to_have_text("This browser is not a registration tablet")
    for path in ("/", "/scan", "/users", "/sync/"):
        page.goto(server.url + path)
        assert re.search(r"/login", page.url), path
    assert page.request.get(f"{server.url}/api/sessions").status == 401
    browser.close()


def test_a_registration_and_two_camera_scans_made_offline_arrive_once_with_their_times(venue, chromium):
    server, event, db, token = venue
    first, second = event["people"][0], event["people"][1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = chromium(extra_args=CAMERA)
    tablet = pair(browser, server, event)
    door = browser.new_context(viewport=PHONE, locale="th-TH")
    door.add_init_script(FAKE_DETECTOR)
    scanner = door.new_page()
    log_in(scanner, server, "door", "/scan")
    for page in (tablet, scanner):  # the service worker installs and takes the page over
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()
        page.wait_for_function("navigator.serviceWorker.controller !== null")

    server.stop()  # the laptop goes away
    tablet.reload()  # served by the service worker from its cache
    fill_walk_in(tablet, first="ประยูร", last="ใจงาม", phone="0865554433")
    made = now_utc()
    tablet.click("#reg-send")
    expect(tablet.locator("#step-saved")).to_be_visible(timeout=15_000)
    expect(tablet.locator("#queue-note")).to_be_visible()
    tablet.screenshot(path=str(ARTIFACTS / "register-saved-offline-360.png"), full_page=True)

    scanner.reload()
    scanner.click("#camera-toggle")
    scan_times = []
    for person in (first, second):
        scan_times.append(now_utc())
        scanner.evaluate("code => window.__codes.push(code)", person["code"])
        expect(scanner.locator("#scan-result")).to_have_class(re.compile(r"\bqueued\b"), timeout=15_000)
        scanner.locator("#scan-result").click()
    expect(scanner.locator("#queue-note")).to_contain_text("2")
    scanner.screenshot(path=str(ARTIFACTS / "scan-saved-offline-360.png"), full_page=True)
    assert db.execute("select count(*) from scans").fetchone()[0] == 0

    server.start()  # the laptop is back: both tablets send by themselves
    expect(tablet.locator("#queue-note")).to_have_text("ส่งการลงทะเบียนที่บันทึกไว้ครบแล้ว", timeout=20_000)
    expect(scanner.locator("#queue-note")).to_be_hidden(timeout=20_000)
    tablet.evaluate("window.dispatchEvent(new Event('online'))")  # another flush sends nothing more
    scanner.evaluate("window.dispatchEvent(new Event('online'))")
    tablet.wait_for_timeout(1500)
    browser.close()

    people = db.execute("select created_at from participants where first_name = 'ประยูร'").fetchall()
    assert len(people) == 1
    assert abs(parse_iso(people[0][0]) - made) < timedelta(seconds=3)
    scans = db.execute("select participant_id, at, result from scans order by at").fetchall()
    assert [s[0] for s in scans] == [first["id"], second["id"]]
    assert all(s[2] == "checked_in" for s in scans)
    for (_, at, _), when in zip(scans, scan_times):
        assert abs(parse_iso(at) - when) < timedelta(seconds=3)
    assert db.execute("select count(*) from attendance").fetchone()[0] == 2


def test_an_idle_tablet_asks_still_there_and_counts_down_before_it_forgets(venue, chromium):
    from kiosk.people import tablets
    server, event, db, token = venue
    tablets.save_settings(db, event["cohort_id"], "refuse", False, 15)
    browser = chromium()
    page = pair(browser, server, event, lang="en")
    page.clock.install()
    page.goto(f"{server.url}/register?lang=en")
    page.clock.pause_at(now_utc() + timedelta(seconds=1))  # the page's time moves only when told
    page.fill("#f-first_name", "สมศรี")  # someone starts, then goes to find their ID card
    page.clock.run_for(15_000)
    dialog = page.locator("#idle-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#idle-stay")).to_be_focused()
    expect(page.locator("#idle-count")).to_have_text("To protect your details, this screen is cleared in 30 seconds.")
    page.clock.run_for(5_000)
    expect(page.locator("#idle-count")).to_contain_text("25 seconds")
    page.screenshot(path=str(ARTIFACTS / "register-still-there-360.png"))
    page.keyboard.press("Enter")  # "yes, I am still here"
    expect(dialog).to_be_hidden()
    expect(page.locator("#f-first_name")).to_have_value("สมศรี")
    page.clock.run_for(16_000)
    expect(dialog).to_be_visible()
    page.clock.run_for(31_000)  # nobody answers: the person is forgotten
    expect(page.locator("#f-first_name")).to_have_value("")
    expect(dialog).to_be_hidden()
    browser.close()


def test_a_tablet_that_loaded_the_form_once_reloads_it_offline(venue, chromium):
    server, event, db, token = venue
    browser = chromium()
    page = pair(browser, server, event)  # one load of /register after pairing, no more
    wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"),
               message="the service worker to take the page")
    wait_until(lambda: page.evaluate("caches.open('kiosk-tablet-v2').then(c => c.match('/register')).then(Boolean)"),
               message="the service worker to keep /register")
    server.stop()
    page.reload()
    expect(page.locator("#reg-form")).to_be_visible()
    expect(page.locator(".reg-program")).to_have_text(event["program"]["title"])
    browser.close()


def test_the_form_by_keyboard_and_screen_reader(venue, chromium):
    server, event, db, token = venue
    browser = chromium()
    page = pair(browser, server, event, lang="en")
    page.click("#reg-send")  # nothing filled in
    first = page.locator("#f-first_name")
    expect(first).to_be_focused()
    expect(first).to_have_attribute("aria-invalid", "true")
    assert "err-first_name" in first.get_attribute("aria-describedby")
    expect(page.locator("#err-first_name")).to_have_text("This is required.")
    for name in ("f-last_name", "f-province", "f-district", "f-phone", "f-pdpa"):
        expect(page.locator(f"#{name}")).to_have_attribute("aria-invalid", "true")
    fill_walk_in(page)
    expect(first).not_to_have_attribute("aria-invalid", "true")
    page.locator("#reg-send").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#done-banner")).to_be_focused()
    expect(page.locator("#announce")).to_have_text("You are registered. Here is your badge.")
    page.keyboard.press("Tab")
    expect(page.locator("#print-a6")).to_be_focused()
    with page.context.expect_page() as opened:
        page.keyboard.press("Enter")
    assert "/register/badge.pdf" in opened.value.url
    browser.close()
