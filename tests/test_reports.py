"""Reports over the seed scenarios: every count equals what the test computes from the plan."""

from collections import Counter

import pytest

from kiosk.badges.codes import paper_row_code
from kiosk.door.checkin import check_in
from kiosk.reports import attendance as att
from kiosk.reports.certificates import eligibility, make_rule, parse_rule
from kiosk.reports.rows import area_name
from kiosk.reports.sources import kiosk_dataset
from kiosk.thai import thai_sort_key

from scenarios import bangkok, bangkok_paper, bangkok_present, national, national_present


@pytest.fixture
def bkk(db):
    scenario = bangkok(db)
    scenario["data"] = kiosk_dataset(db, scenario["program_id"], scenario["cohort_id"])
    return scenario


@pytest.fixture
def nat(db):
    scenario = national(db)
    scenario["data"] = kiosk_dataset(db, scenario["program_id"], scenario["cohort_id"])
    return scenario


def test_bangkok_counts_per_day_session_and_paper_equal_the_plan(bkk):
    people = bkk["people"]
    expected_days = [sum(bangkok_present(i, d) for i in range(len(people))) for d in (0, 1)]
    paper = sum(bangkok_paper(i) for i in range(len(people)))
    assert [r["present"] for r in att.by_day(bkk["data"])] == expected_days
    sessions = att.by_session(bkk["data"])
    assert [r["present"] for r in sessions] == expected_days
    assert [r["paper"] for r in sessions] == [0, paper] and paper > 0
    assert sessions[1]["door"] == expected_days[1] - paper
    assert all(r["expected"] == 200 for r in sessions)


def test_bangkok_counts_per_district_and_role_equal_the_plan(bkk):
    people = bkk["people"]
    came = {i for i in range(len(people)) if bangkok_present(i, 0) or bangkok_present(i, 1)}
    both = {i for i in range(len(people)) if bangkok_present(i, 0) and bangkok_present(i, 1)}
    by_district = Counter(p["district"] for i, p in enumerate(people) if i in came and p["role"] == "participant")
    rows = att.by_area(bkk["data"], "district")
    assert len(rows) == 8
    assert {r["area"].removeprefix("เขต"): r["attended"] for r in rows} == dict(by_district)
    assert all(r["registered"] in (22, 23) and r["target"] == 22 for r in rows)
    assert [r["area"] for r in rows] == sorted((r["area"] for r in rows), key=thai_sort_key)
    roles = {r["role"]: r for r in att.by_role(bkk["data"])}
    for role, total in (("participant", 180), ("speaker", 6), ("staff", 14)):
        members = [i for i, p in enumerate(people) if p["role"] == role]
        assert roles[role]["registered"] == total == roles[role]["target"]
        assert roles[role]["attended"] == len(came & set(members))
        assert roles[role]["complete"] == len(both & set(members))


def test_bangkok_targets_and_totals(bkk):
    people = bkk["people"]
    came = [i for i in range(len(people)) if bangkok_present(i, 0) or bangkok_present(i, 1)]
    totals = att.totals(bkk["data"])
    assert totals["registered"] == 200 and totals["attended"] == len(came)
    marks = sum(bangkok_present(i, d) for i in range(200) for d in (0, 1))
    assert totals["marks"] == marks and totals["percent"] == round(100 * marks / 400, 1)
    dindaeng = next(t for t in att.against_targets(bkk["data"]) if t["area"] == "เขตดินแดง")
    expected = sum(1 for i in came if people[i]["district"] == "ดินแดง" and people[i]["role"] == "participant")
    assert dindaeng["attended"] == expected and dindaeng["percent"] == round(100 * expected / 22, 1)


def test_grid_marks_door_paper_and_absent_per_person(bkk):
    grid = att.grid(bkk["data"])
    by_id = {r["id"]: r for r in grid["rows"]}
    for i, person in enumerate(bkk["people"][:40]):
        marks = by_id[person["id"]]["marks"]
        assert marks[0] == ("door" if bangkok_present(i, 0) else None)
        assert marks[1] == (("paper" if bangkok_paper(i) else "door") if bangkok_present(i, 1) else None)


def test_national_counts_per_province_and_day(nat):
    people = nat["people"]
    expected_days = [sum(national_present(i, d) for i in range(154)) for d in range(4)]
    assert [r["present"] for r in att.by_day(nat["data"])] == expected_days
    rows = att.by_area(nat["data"], "province")
    assert len(rows) == 77 and all(r["registered"] == 2 for r in rows)
    came = Counter(p["province_code"] for i, p in enumerate(people) if any(national_present(i, d) for d in range(4)))
    assert {r["area_code"]: r["attended"] for r in rows} == {p["province_code"]: came[p["province_code"]]
                                                             for p in people}
    names = [r["area"] for r in rows]
    assert names == sorted(names, key=thai_sort_key) and names[0] == "กระบี่"


def test_national_certificates_at_80_percent_equal_the_plan(nat):
    rule = parse_rule(nat["data"].program["certificate_rule"])
    assert rule.kind == "percent" and rule.min_percent == 80
    rows = {r["id"]: r for r in eligibility(nat["data"], rule)}
    for i, person in enumerate(nat["people"]):
        days = [d for d in range(4) if national_present(i, d)]
        assert rows[person["id"]]["eligible"] == (len(days) / 4 >= 0.8), person["first_name"]
        assert [s["day"] for s in rows[person["id"]]["missing"]] == [
            nat["sessions"][d]["day"] for d in range(4) if d not in days]


@pytest.mark.parametrize("kind, wanted", [("all_sessions", lambda n: n == 4), ("all_days", lambda n: n == 4),
                                          ("percent", lambda n: n >= 2)])
def test_each_certificate_rule_kind(nat, kind, wanted):
    rule = make_rule(kind, 50)
    got = {r["id"]: r["eligible"] for r in eligibility(nat["data"], rule)}
    for i, person in enumerate(nat["people"]):
        assert got[person["id"]] == wanted(sum(national_present(i, d) for d in range(4)))


def test_a_paper_row_of_another_session_or_forged_is_refused(db, bkk):
    person, (day1, day2) = bkk["people"][0], bkk["sessions"]
    forged = paper_row_code(bkk["program_id"], person["id"], day1["id"], b"not the key")
    with pytest.raises(Exception) as refused:
        check_in(db, forged, paper=True)
    assert refused.value.reason == "invalid_code"
    genuine = paper_row_code(bkk["program_id"], person["id"], day1["id"], bkk["key"])
    with pytest.raises(Exception) as refused:
        check_in(db, genuine, day2["id"], paper=True)
    assert refused.value.reason == "paper_other_session"


def test_area_names_and_thai_order():
    assert area_name("10") == "กรุงเทพมหานคร" and area_name("") == ""
    words = ["ไก่", "ขวด", "เข็ม", "กา", "ก้อน", "แข", "คน"]
    assert sorted(words, key=thai_sort_key) == ["ก้อน", "กา", "ไก่", "ขวด", "เข็ม", "แข", "คน"]
