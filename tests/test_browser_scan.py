"""The door in real Chromium against a real server: a scanner typing through a Thai keyboard layout.

The scanner's keystrokes are sent as trusted key events (Chrome DevTools Input.dispatchKeyEvent)
whose `key` and `text` are the Thai letters a Kedmanee layout produces and whose `code` is the
physical key: a page that read `key` would see Thai and fail.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kiosk.door.checkin import local_hhmm

from support import log_in

pytestmark = pytest.mark.browser

# Kedmanee: what each physical key types, unshifted.
KEDMANEE = dict(zip(
    [f"Key{c}" for c in "QWERTYUIOPASDFGHJKLZXCVBNM"] + [f"Digit{d}" for d in "1234567890"],
    "ๆไำพะัีรนยฟหกดเ้่าสวผปแอิืทๅ/-ภถุึคตจ",
))
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"

# Records which sound the page played, since headless Chromium has no speakers.
SOUND_SPY = """
window.__played = [];
const realPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  window.__played.push(this.src.split('/').pop());
  return realPlay.call(this).catch(() => {});
};
"""


def physical_key(ch: str) -> str:
    return f"Key{ch}" if ch.isalpha() else f"Digit{ch}"


def scan_trusted(page, cdp, code: str) -> None:
    """Types `code` + Enter as a USB scanner would under a Thai layout (trusted events)."""
    for ch in code:
        key_code = physical_key(ch)
        thai = KEDMANEE[key_code]
        common = {"key": thai, "code": key_code, "windowsVirtualKeyCode": ord(ch)}
        cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": thai, **common})
        cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})
    enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
    cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": "\r", **enter})
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **enter})


def scan_synthetic(page, code: str) -> None:
    """The same through KeyboardEvent objects dispatched by script (untrusted, no default action)."""
    keys = [{"key": KEDMANEE[physical_key(ch)], "code": physical_key(ch)} for ch in code]
    keys.append({"key": "Enter", "code": "Enter"})
    page.evaluate("""keys => { for (const k of keys) {
        const target = document.activeElement || document.body;
        target.dispatchEvent(new KeyboardEvent('keydown', {...k, bubbles: true, cancelable: true}));
        target.dispatchEvent(new KeyboardEvent('keyup', {...k, bubbles: true, cancelable: true}));
    } }""", keys)


@pytest.fixture
def door(db, open_event, accounts, kiosk_server):
    """A real kiosk server whose session is open now, with the door's accounts."""
    return kiosk_server(), open_event, db


def log_in_in_english(page, server):
    log_in(page, server, lang="en")
    page.goto(f"{server.url}/scan?lang=en")  # logging in starts a new session: choose English again
    expect(page.locator("#scan-code")).to_be_focused()


def test_door_journey_in_real_chromium(door, chromium):
    server, event, db = door
    first, second = event["people"][0], event["people"][1]
    forged = first["code"][:-3] + ("AAA" if first["code"][-3:] != "AAA" else "BBB")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="th-TH")
    context.add_init_script(SOUND_SPY)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in_in_english(page, server)
    cdp = context.new_cdp_session(page)
    result = page.locator("#scan-result")

    scan_trusted(page, cdp, first["code"])
    expect(result).to_have_class(re.compile(r"\bok\b"))
    expect(result).to_be_visible()
    expect(page.locator("#result-name")).to_have_text("นางสาวสมหญิง ใจดี")
    expect(page.locator("#result-detail")).to_contain_text("เขตดินแดง")
    expect(page.locator("#layout-warning")).to_be_visible()
    expect(page.locator("#count-in")).to_have_text("1")
    expect(page.locator("#count-expected")).to_have_text("4")
    page.screenshot(path=str(ARTIFACTS / "scan-green.png"))

    scan_synthetic(page, first["code"])
    expect(result).to_have_class(re.compile(r"\brepeat\b"))
    first_at = db.execute("select first_at from attendance where participant_id = ?", [first["id"]]).fetchone()[0]
    expect(page.locator("#result-time")).to_contain_text(local_hhmm(first_at))
    page.screenshot(path=str(ARTIFACTS / "scan-amber.png"))

    scan_trusted(page, cdp, forged)
    expect(result).to_have_class(re.compile(r"\berror\b"))
    expect(page.locator("#result-detail")).to_contain_text("forged")
    expect(page.locator("#result-foot")).not_to_contain_text("invalid_code")  # no internal code on screen
    page.screenshot(path=str(ARTIFACTS / "scan-red.png"))

    result.click()  # staff dismisses the red screen to use the search
    expect(result).to_be_hidden()
    page.fill("#people-q", "ศรีสุข")
    person = page.locator("#people-results li.person", has_text="สมชาย")
    expect(person).to_have_count(1)
    person.get_by_role("button", name="Check in").click()
    expect(result).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#result-name")).to_have_text("นายสมชาย ศรีสุข")
    expect(page.locator("#count-in")).to_have_text("2")
    expect(person.locator(".tag.in")).to_be_visible()  # the list shows them as in now

    result.click()
    page.screenshot(path=str(ARTIFACTS / "scan-page.png"), full_page=True)
    expect(page.locator("#scan-code")).to_be_focused()  # ready for the next scan by itself

    page.check("input[name=scan-direction][value=out]")  # the end of the day: people leave
    expect(page.locator("#scan-code")).to_be_focused()
    scan_trusted(page, cdp, first["code"])
    expect(result).to_have_class(re.compile(r"\bout\b"))  # leaving does not look like arriving
    expect(page.locator("#result-status")).to_have_text("Checked out")
    expect(page.locator("#result-icon")).to_have_text("⇦")
    page.screenshot(path=str(ARTIFACTS / "scan-out.png"))
    assert page.evaluate("window.__played") == ["ok.wav", "repeat.wav", "error.wav", "ok.wav", "ok.wav"]
    assert errors == []
    browser.close()

    rows = db.execute("select result, code is null from scans order by rowid").fetchall()
    assert rows == [("checked_in", 0), ("already_checked_in", 0), ("invalid_code", 0), ("checked_in", 1),
                    ("checked_out", 0)]
    assert db.execute("select last_out_at is not null from attendance where participant_id = ?",
                      [first["id"]]).fetchone() == (1,)
    attended = {r[0] for r in db.execute("select participant_id from attendance").fetchall()}
    assert attended == {first["id"], second["id"]}


def test_phone_width_reprint_and_no_sideways_scroll(door, chromium):
    server, event, db = door
    person = event["people"][2]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, server)
    page.fill("#people-q", "ลำดวน")
    item = page.locator("#people-results li.person")
    expect(item).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "scan-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.on("dialog", lambda dialog: dialog.accept())
    item.locator("button").nth(1).click()  # reprint
    expect(page.locator("#badge-dialog")).to_be_visible()
    expect(page.locator("#badge-img")).to_have_js_property("complete", True)
    assert page.evaluate("document.getElementById('badge-img').naturalWidth") > 1000
    page.screenshot(path=str(ARTIFACTS / "scan-phone-badge.png"))
    page.click("#badge-close")

    page.fill("#scan-code", person["code"])  # typed by hand on the phone's keyboard
    page.click("#scan-submit")
    expect(page.locator("#scan-result")).to_have_class(re.compile(r"\berror\b"))  # the old badge is revoked
    page.screenshot(path=str(ARTIFACTS / "scan-phone-red.png"))
    browser.close()
    assert db.execute("select result from scans").fetchall() == [("revoked_badge",)]


def test_links_and_buttons_of_the_door_work_by_keyboard(door, chromium):
    server, event, db = door
    browser = chromium()
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in_in_english(page, server)
    page.fill("#people-q", "ศรีสุข")
    check_in_button = page.locator("#people-results li.person").get_by_role("button", name="Check in")
    expect(check_in_button).to_be_visible()
    check_in_button.focus()
    page.keyboard.press("Enter")  # a found person's "check in", with the keyboard
    expect(page.locator("#scan-result")).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#result-name")).to_have_text("นายสมชาย ศรีสุข")
    page.locator("#scan-result").click()
    page.locator("#camera-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#camera-panel")).to_be_visible()
    page.locator("a.brand").focus()
    page.keyboard.press("Enter")  # a navigation link
    page.wait_for_url(re.compile(r"/$"))
    browser.close()
    assert db.execute("select count(*) from scans").fetchone()[0] == 1  # the Enters were not scans
