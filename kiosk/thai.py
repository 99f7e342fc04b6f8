"""Thai text rules: names (NFC, zero-width, sara am), titles, phones, national IDs, areas;
and, in their own sections at the end, the calendar (Buddhist Era, month names, Thai digits),
dictionary order, and amounts in words.

Pure functions over text, with no database: roster import, self-registration, the door's search and
every document use the same rules. They raise `PeopleError` with the field at fault.
"""

import functools
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import geothai
from geothai import normalize as area_key

from kiosk.errors import PeopleError

ROLES = ("participant", "speaker", "staff", "observer")
ROLE_NAMES_TH = {"participant": "ผู้เข้าอบรม", "speaker": "วิทยากร", "staff": "เจ้าหน้าที่", "observer": "ผู้สังเกตการณ์"}


# Long forms first so "นางสาว" is not read as "นาง" + "สาว…".
TITLES = (
    "ว่าที่ร้อยตรีหญิง", "ว่าที่ร้อยตรี", "ว่าที่ ร.ต.", "นางสาว", "น.ส.", "นาย", "นาง", "ดร.",
    "ด.ช.", "ด.ญ.", "พ.ต.อ.", "พ.ต.ท.", "ร.ต.อ.", "จ.ส.อ.", "พระ", "Mr.", "Mrs.", "Ms.", "Miss", "Dr.",
)
TITLE_ALIASES = {"น.ส.": "นางสาว", "ว่าที่ ร.ต.": "ว่าที่ร้อยตรี", "นส.": "นางสาว"}
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# Thai sara am typed as nikhahit + sara aa (with or without a tone mark between) is one letter.
_SARA_AM = re.compile("\u0e4d([\u0e48-\u0e4b]?)\u0e32")
_TONE_AFTER_NIKHAHIT = re.compile("\u0e4d([\u0e48-\u0e4b])")
_PHONE = re.compile(r"^0\d{8,9}$")


def clean_text(text: str | None) -> str:
    """NFC, no zero-width characters, Thai sara am composed, single spaces, trimmed."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", str(text)))
    text = _TONE_AFTER_NIKHAHIT.sub("\\1\u0e4d", text)
    text = _SARA_AM.sub("\\1\u0e33", text)
    return " ".join(text.split())


NAME_MAX = 100  # characters in a first or last name, after cleaning
TEXT_MAX = 200  # characters in a title, position, organization or community
# Markup and the characters that hide or reorder text: none belongs in a name or an office.
_MARKUP = re.compile(r"<|>|&#?[0-9a-z]+;|javascript:", re.I)
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain_text(value: str | None, field: str, limit: int = TEXT_MAX) -> str:
    """`clean_text`, refusing HTML, script, control or bidi-override characters and over-long text."""
    raw = "" if value is None else str(value)
    if _HIDDEN.search(raw) or _MARKUP.search(raw):
        raise PeopleError("bad_text", f"{field}: plain text only, no HTML or control characters", field)
    text = clean_text(raw)
    if len(text) > limit:
        reason = "name_too_long" if limit == NAME_MAX else "field_too_long"
        raise PeopleError(reason, f"{field}: {len(text)} characters, {limit} at most", field)
    return text


def split_title(full_name: str) -> tuple[str, str]:
    """Splits a leading Thai or English title from a name: ('นางสาว', 'สมหญิง ใจดี')."""
    name = clean_text(full_name)
    for title in TITLES:
        if name.startswith(title):
            return TITLE_ALIASES.get(title, title), name[len(title):].strip()
    return "", name


def normalize_title(title: str | None) -> str:
    """The long form of a title: 'น.ส.' → 'นางสาว'."""
    title = clean_text(title)
    return TITLE_ALIASES.get(title, title)


def national_id_valid(nid: str) -> bool:
    """A Thai national ID: 13 digits whose last is the mod-11 check digit of the first 12."""
    if not re.fullmatch(r"\d{13}", nid):
        return False
    total = sum(int(d) * (13 - i) for i, d in enumerate(nid[:12]))
    return (11 - total % 11) % 10 == int(nid[12])


def national_id_fields(raw: str | None) -> dict:
    """The stored form of a national ID (PDPA): a keyed hash and the last four digits.

    The key is this computer's (`kiosk.trust.keys.id_hash_key`), kept outside the data folder and never
    synced: the hash finds a repeated ID on this kiosk, and nowhere else can it be tested.
    """
    nid = re.sub(r"[\s-]", "", clean_text(raw))
    if not nid:
        return {"nid_hash": None, "nid_last4": None}
    if not national_id_valid(nid):
        raise PeopleError("bad_national_id", "national ID must be 13 digits with a valid check digit", "national_id")
    from kiosk.trust.keys import id_hash_key
    digest = hmac.new(id_hash_key(), nid.encode(), hashlib.sha256).hexdigest()
    return {"nid_hash": digest, "nid_last4": nid[-4:]}


def normalize_phone(raw: str | None) -> str:
    """A Thai phone number as 10 (mobile) or 9 (landline) digits; +66 is read as 0."""
    digits = re.sub(r"[\s\-().]", "", clean_text(raw))
    if not digits:
        return ""
    if digits.startswith("+66"):
        digits = "0" + digits[3:]
    if not _PHONE.match(digits):
        raise PeopleError("bad_phone", f"phone {raw!r} is not a Thai number", "phone")
    return digits


def repair_phone(raw: str | None) -> str:
    """A phone as a spreadsheet kept it, put right: stored as a number it lost its leading 0
    (812345678 → 0812345678, 21234567 → 021234567), or kept 66 without its plus. Anything else
    comes back as it was, for `normalize_phone` to judge."""
    text = clean_text(raw)
    digits = re.sub(r"[\s\-().]", "", text)
    if re.fullmatch(r"[689]\d{8}|[2-7]\d{7}", digits):  # a mobile (06/08/09) or a landline without its 0
        return "0" + digits
    if re.fullmatch(r"66[2-9]\d{7,8}", digits):
        return "0" + digits[2:]
    return text


@dataclass(frozen=True)
class Area:
    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None


def _find_province(name: str):
    key = area_key(name)
    found = [p for p in geothai.provinces() if geothai.is_province(p, key)]
    if not found:
        raise PeopleError("unknown_area", f"unknown province {name!r}", "province")
    return found[0]


def _find_district(name: str, province_code: str | None):
    key = area_key(name)
    pool = geothai.districts(province_code) if province_code else [
        d for p in geothai.provinces() for d in geothai.districts(p.code)]
    found = [d for d in pool if geothai.is_district(d, key)]
    if not found:
        raise PeopleError("unknown_area", f"unknown district {name!r}", "district")
    if len(found) > 1:
        raise PeopleError("ambiguous_area", f"district {name!r} exists in several provinces; give the province", "district")
    return found[0]


def _find_subdistrict(name: str, district_code: str):
    key = area_key(name)
    found = [s for s in geothai.subdistricts(district_code) if key in (area_key(s.name_th), area_key(s.name_en))]
    if not found:
        raise PeopleError("unknown_area", f"unknown subdistrict {name!r} in this district", "subdistrict")
    return found[0]


def resolve_area(province: str = "", district: str = "", subdistrict: str = "") -> Area:
    """Finds codes for an area written by hand ('กทม.', 'เขตดินแดง', 'ต.เกาะเต่า', 'อ.เมือง')."""
    province, district, subdistrict = clean_text(province), clean_text(district), clean_text(subdistrict)
    p = _find_province(province) if province else None
    d = _find_district(district, p.code if p else None) if district else None
    if subdistrict and not d:
        raise PeopleError("unknown_area", "a subdistrict needs its district", "subdistrict")
    s = _find_subdistrict(subdistrict, d.code) if subdistrict else None
    return Area(p.code if p else (d.province_code if d else None), d.code if d else None, s.code if s else None)


def area_from_codes(province_code: str = "", district_code: str = "", subdistrict_code: str = "") -> Area:
    """An area chosen from lists (geothai codes): each part must exist and lie inside the one above."""
    p = geothai.province(province_code) if province_code else None
    if province_code and not p:
        raise PeopleError("unknown_area", f"unknown province code {province_code!r}", "province")
    d = geothai.district(district_code) if district_code else None
    if district_code and not (d and p and d.province_code == p.code):
        raise PeopleError("unknown_area", f"district {district_code!r} is not in the province", "district")
    s = geothai.subdistrict(subdistrict_code) if subdistrict_code else None
    if subdistrict_code and not (s and d and s.district_code == d.code):
        raise PeopleError("unknown_area", f"subdistrict {subdistrict_code!r} is not in the district", "subdistrict")
    return Area(p.code if p else None, d.code if d else None, s.code if s else None)


def area_lists() -> list[dict]:
    """Every province with its districts and subdistricts, for the registration form's lists:
    [[code, Thai name, English name, [districts the same way, [subdistricts]]]]."""
    return [[p.code, p.name_th, p.name_en, [
        [d.code, d.name_th, d.name_en, [[s.code, s.name_th, s.name_en] for s in geothai.subdistricts(d.code)]]
        for d in geothai.districts(p.code)]] for p in geothai.provinces()]


def area_choices(province_code: str | None = "", district_code: str | None = "") -> dict:
    """What a form's area lists hold before any script runs: every province, the districts of the
    chosen province and the subdistricts of the chosen district, as (code, Thai, English)."""
    def rows(items):
        return [(x.code, x.name_th, x.name_en) for x in items]
    return {"provinces": rows(geothai.provinces()),
            "districts": rows(geothai.districts(province_code)) if province_code else [],
            "subdistricts": rows(geothai.subdistricts(district_code)) if district_code else []}


def area_parts(code: str | None) -> tuple[str, str, str]:
    """(province, district, subdistrict) codes of one area code (geothai codes nest: 10 › 1026 › 102601)."""
    code = code or ""
    return code[:2], code[:4] if len(code) >= 4 else "", code if len(code) == 6 else ""


def area_label(province_code: str | None, district_code: str | None = None,
               subdistrict_code: str | None = None, short: bool = False) -> str:
    """Thai display of an area: 'แขวงดินแดง เขตดินแดง กรุงเทพมหานคร' or 'ต.เกาะเต่า อ.เกาะพะงัน จ.สุราษฎร์ธานี'."""
    parts = []
    bangkok = province_code == "10"
    if subdistrict_code and (s := geothai.subdistrict(subdistrict_code)):
        parts.append(("แขวง" if bangkok else "ต.") + s.name_th)
    if district_code and (d := geothai.district(district_code)):
        parts.append(d.name_th if bangkok else "อ." + d.name_th)
    if province_code and (p := geothai.province(province_code)) and not (short and parts):
        parts.append(p.name_th if bangkok else "จ." + p.name_th)
    return " ".join(parts)


_FORMULA = re.compile(r"^(?:[=+@\t\r]|-[^\d\s])")


def reject_formula(value: str) -> None:
    """Refuses text a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM`, `+cmd`)."""
    if _FORMULA.match(value):
        raise PeopleError("formula", f"cell looks like a spreadsheet formula: {value[:40]!r}")


def area_names(person: dict) -> dict:
    """A person's area written out as names, as a form or a roster would hold them."""
    province = geothai.province(person.get("province_code") or "")
    district = geothai.district(person.get("district_code") or "")
    subdistrict = geothai.subdistrict(person.get("subdistrict_code") or "")
    return {"province": province.name_th if province else "", "district": district.name_th if district else "",
            "subdistrict": subdistrict.name_th if subdistrict else ""}


ERASED_NAME = "(ลบข้อมูลแล้ว · erased)"


def full_name(p: dict) -> str:
    """Title, first and last name as Thai writes them: 'นางสาวสมหญิง ใจดี'; ERASED_NAME for a person
    whose data was erased (kiosk.people.privacy)."""
    if p.get("erased_at"):
        return ERASED_NAME
    title = p.get("title") or ""
    latin = title[:1].isascii() or p["first_name"][:1].isascii()
    sep = " " if title and latin else ""
    return f"{title}{sep}{p['first_name']} {p['last_name']}".strip()


# =============================================================================================
# Calendar: Buddhist Era years, Thai month names, Thai digits
# =============================================================================================
# Babel knows only the Gregorian year and Arabic digits; Thai official papers write the
# Buddhist Era (พ.ศ. = Gregorian + 543) and often Thai digits (๐-๙).

BE_OFFSET = 543
THAI_MONTHS = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม",
               "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม")
THAI_MONTHS_SHORT = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.",
                     "พ.ย.", "ธ.ค.")
_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


def thai_digits(text) -> str:
    """`text` with Arabic digits written as Thai digits: '2569' → '๒๕๖๙'."""
    return str(text).translate(_THAI_DIGITS)


def as_date(day) -> date:
    """A date from a date, a datetime or ISO text ('2026-11-21', '2026-11-21T08:00:00Z')."""
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return date.fromisoformat(str(day)[:10])


def be_year(day) -> int:
    """The Buddhist Era year of a date: 2026 → 2569."""
    return as_date(day).year + BE_OFFSET


def thai_date(day, short: bool = False, digits: bool = False, era: bool | None = None) -> str:
    """A date as Thai writes it: '21 พฤศจิกายน พ.ศ. 2569', short '21 พ.ย. 2569'.

    `era` (default: on for the long form) writes 'พ.ศ.' before the year; `digits` writes Thai digits.
    """
    day = as_date(day)
    months = THAI_MONTHS_SHORT if short else THAI_MONTHS
    era = (not short) if era is None else era
    text = f"{day.day} {months[day.month - 1]} {'พ.ศ. ' if era else ''}{be_year(day)}"
    return thai_digits(text) if digits else text


def thai_date_range(first, last, digits: bool = False) -> str:
    """Two dates as one span: '28 กุมภาพันธ์ – 3 มีนาคม พ.ศ. 2562', '21 – 22 พฤศจิกายน พ.ศ. 2569'."""
    first, last = as_date(first), as_date(last or first)
    if first == last:
        return thai_date(first, digits=digits)
    if (first.year, first.month) == (last.year, last.month):
        text = f"{first.day} – {thai_date(last)}"
    elif first.year == last.year:
        text = f"{first.day} {THAI_MONTHS[first.month - 1]} – {thai_date(last)}"
    else:
        text = f"{thai_date(first)} – {thai_date(last)}"
    return thai_digits(text) if digits else text


def thai_time(stamp: datetime, digits: bool = False) -> str:
    """A time of day as official papers write it: '08.15 น.'."""
    text = f"{stamp:%H.%M} น."
    return thai_digits(text) if digits else text


# =============================================================================================
# Sorting: Thai dictionary order
# =============================================================================================
# Unicode puts the Thai consonants (ก…ฮ) and the following vowels in dictionary order already,
# but the leading vowels เ แ โ ใ ไ are written before the consonant they follow in speech; a
# dictionary files เขต under ข. Tone marks and other signs only break ties.

_LEADING_VOWEL = re.compile("([\u0e40-\u0e44])([\u0e01-\u0e2e])")
_SIGNS = re.compile("[\u0e47-\u0e4e]")


def thai_sort_key(text: str | None) -> tuple[str, str]:
    """A sort key putting Thai text in dictionary order: ก before ข, เขต filed under ข."""
    swapped = _LEADING_VOWEL.sub(r"\2\1", text or "")
    return _SIGNS.sub("", swapped), swapped


# =============================================================================================
# Amounts in words: บาท and สตางค์ as cheques and receipts write them
# =============================================================================================

_DIGIT_WORDS = ("ศูนย์", "หนึ่ง", "สอง", "สาม", "สี่", "ห้า", "หก", "เจ็ด", "แปด", "เก้า")
_PLACES = ("", "สิบ", "ร้อย", "พัน", "หมื่น", "แสน")


def _below_million(n: int, after_million: bool = False) -> str:
    words = []
    digits = str(n)
    for position, ch in enumerate(digits):
        digit, place = int(ch), len(digits) - position - 1
        if digit == 0:
            continue
        if place == 1 and digit == 1:
            words.append("สิบ")
        elif place == 1 and digit == 2:
            words.append("ยี่สิบ")
        elif place == 0 and digit == 1 and (len(digits) > 1 or after_million):
            words.append("เอ็ด")
        else:
            words.append(_DIGIT_WORDS[digit] + _PLACES[place])
    return "".join(words)


def number_words(n: int) -> str:
    """A whole number in Thai words: 1200 → 'หนึ่งพันสองร้อย', 21 → 'ยี่สิบเอ็ด'."""
    if n < 0:
        return "ลบ" + number_words(-n)
    if n == 0:
        return _DIGIT_WORDS[0]
    millions, rest = divmod(n, 1_000_000)
    head = number_words(millions) + "ล้าน" if millions else ""
    return head + (_below_million(rest, bool(millions)) if rest else "")


def baht_text(amount) -> str:
    """An amount in Thai words as a receipt writes it: 1200 → 'หนึ่งพันสองร้อยบาทถ้วน',
    12.50 → 'สิบสองบาทห้าสิบสตางค์'."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    baht, satang = divmod(int(value * 100), 100)
    if baht == 0 and satang:
        return number_words(satang) + "สตางค์"
    text = number_words(baht) + "บาท"
    return text + (number_words(satang) + "สตางค์" if satang else "ถ้วน")
# --- similar names ---------------------------------------------------------------------------
# Marks a hurried typist puts in another order or leaves out: tone marks, ็ and ์ (thanthakhat).
_FORGIVEN_MARKS = re.compile("[\u0e47-\u0e4c]")
_ABOVE_BELOW = frozenset("\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a\u0e4d")


def name_key(text: str | None) -> str:
    """A name reduced to what a reader would call 'the same spelling': no tone marks, no ์,
    vowels above and below a consonant in one fixed order, no spaces, Latin lower-cased."""
    text = _FORGIVEN_MARKS.sub("", clean_text(text)).replace(" ", "").lower()
    out: list[str] = []
    marks: list[str] = []
    for ch in text:
        if ch in _ABOVE_BELOW:
            marks.append(ch)
            continue
        out.extend(sorted(marks))
        marks = []
        out.append(ch)
    return "".join(out + sorted(marks))


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether one insertion, deletion or substitution turns `a` into `b` (or they are equal)."""
    if abs(len(a) - len(b)) > 1:
        return False
    head = len(os.path.commonprefix([a, b]))
    tail = len(os.path.commonprefix([a[head:][::-1], b[head:][::-1]]))
    return len(a) - head - tail <= 1 and len(b) - head - tail <= 1


@functools.lru_cache(maxsize=65536)
def _pair_key(first: str, last: str) -> str:
    return name_key(first) + "|" + name_key(last)


def similar_names(first_a: str, last_a: str, first_b: str, last_b: str) -> bool:
    """Whether two Thai names are very likely the same person's, typed differently.

    Equal once tone marks, ์ and the order of vowel marks are forgiven; or, for names long
    enough that one slip cannot turn one name into another, one letter apart.
    """
    a, b = _pair_key(first_a or "", last_a or ""), _pair_key(first_b or "", last_b or "")
    if a == b:
        return True
    return min(len(a), len(b)) >= 9 and _one_edit_apart(a, b)
