"""JSON from outside (a tablet, a scanner, a peer, a USB bundle), refused when nested too deeply
before the parser sees it.

CPython's JSON decoder recurses once per level: a body of 100,000 `[` raises RecursionError in
the middle of the C decoder, and on Python 3.11 that can leave the interpreter in a bad state
(a server thread that later fails at random). So the depth is measured first, without
recursion and in C loops over bytes: strings are cut out (a bracket inside text is not nesting),
then the brackets left are counted up and down.
"""

import json
import operator
from itertools import accumulate, repeat

MAX_DEPTH = 64  # the deepest genuine body (a sync batch) nests 5 levels
# A sync batch of 2,500 changes holds about 25,000 brackets; far more is refused without counting
# (a 64 MB body of brackets would hold the GIL, and the door, for seconds).
MAX_BRACKETS = 1_000_000
_OTHERS = bytes(b for b in range(256) if b not in b'"[]{}')
_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # an opener counts +1, a closer -1 (minus one each)


class TooDeep(ValueError):
    """JSON nested deeper than allowed (or holding more brackets than any genuine body)."""


def check_depth(raw: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """Raises TooDeep unless the brackets of `raw` (outside strings) nest at most `max_depth` deep.

    Every step is a C loop over bytes: escaped backslashes and quotes go first, so that each
    remaining quote opens or closes a string; then everything but quotes and brackets; then the
    strings (every other piece between quotes); the depth is the highest running count of
    openers less closers. Text that is not JSON may pass or not: the parser refuses it after.
    """
    text = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(text.translate(None, _OTHERS).split(b'"')[::2])
    if len(brackets) > MAX_BRACKETS:
        raise TooDeep(f"JSON with more than {MAX_BRACKETS} brackets")
    depth = max(accumulate(map(operator.sub, brackets.translate(_STEPS), repeat(1))), default=0)
    if depth > max_depth:
        raise TooDeep(f"JSON nested {depth} levels deep (at most {max_depth})")


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH):
    """`json.loads` of text whose nesting was checked first; ValueError for anything not JSON."""
    check_depth(raw, max_depth)
    return json.loads(raw)
