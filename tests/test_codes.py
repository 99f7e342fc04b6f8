"""Badge codes: signed, short, verifiable offline; forged and foreign codes told apart."""

import pytest

from kiosk.badges.codes import CODE_LEN, CodeError, make_code, normalize_code, program_tag, verify_code

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def test_a_code_is_twenty_base32_characters_and_verifies_with_its_program_key():
    code = make_code("program-a", KEY)
    assert len(code) == CODE_LEN and set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert code.startswith(program_tag("program-a"))
    assert verify_code(code, {"program-a": KEY}) == "program-a"


def test_codes_are_unique():
    assert len({make_code("p", KEY) for _ in range(2000)}) == 2000


def test_a_forged_code_with_the_right_format_fails_its_signature():
    code = make_code("program-a", KEY)
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    with pytest.raises(CodeError) as caught:
        verify_code(forged, {"program-a": KEY})
    assert (caught.value.reason, caught.value.detail) == ("invalid_code", "signature")


def test_a_code_signed_with_another_key_for_our_tag_is_forged():
    forged = make_code("program-a", OTHER_KEY)
    with pytest.raises(CodeError) as caught:
        verify_code(forged, {"program-a": KEY})
    assert caught.value.detail == "signature"


def test_a_code_from_another_program_is_told_apart_from_a_forged_one():
    theirs = make_code("program-b", OTHER_KEY)
    with pytest.raises(CodeError) as caught:
        verify_code(theirs, {"program-a": KEY})
    assert (caught.value.reason, caught.value.detail) == ("wrong_program", "tag")


@pytest.mark.parametrize("raw", ["", "   ", "A" * 19, "A" * 21, "A" * 5000, "ฟหกดเ" * 4, "😀" * 20,
                                 "' OR 1=1; --        ", "ABCDEFGHIJKLMNOPQR89", None, 12345])
def test_bad_formats_are_invalid_codes(raw):
    with pytest.raises(CodeError) as caught:
        verify_code(raw, {"program-a": KEY})
    assert (caught.value.reason, caught.value.detail) == ("invalid_code", "format")


def test_lower_case_spaces_and_dashes_from_typing_are_accepted():
    code = make_code("program-a", KEY)
    typed = " " + "-".join(code[i:i + 4] for i in range(0, 20, 4)).lower() + "\n"
    assert normalize_code(typed) == code
    assert verify_code(typed, {"program-a": KEY}) == "program-a"
