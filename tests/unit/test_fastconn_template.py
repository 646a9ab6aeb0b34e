"""A pre-encoded command template sends the same bytes as encoding the command whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyqueue._protocol.fastconn import Template, encode

HOLE_A = "\x00a"
HOLE_B = -(2**62) - 1
HOLE_C = "\x00c"

# Floats and bools go through the generic conversion, not the unrolled one.
args_st = st.one_of(
    st.text(max_size=20), st.integers(), st.binary(max_size=20), st.floats(), st.booleans()
)


@given(st.lists(args_st, max_size=5), args_st, args_st, args_st)
def test_template_encodes_like_the_whole_command(fixed, a, b, c):
    template = Template(
        ("EVALSHA", "abc", *fixed, HOLE_A, "mid", HOLE_B, HOLE_C, 7), (HOLE_A, HOLE_B, HOLE_C)
    )
    whole = ("EVALSHA", "abc", *fixed, a, "mid", b, c, 7)
    assert template.encode((a, b, c)) == encode(whole)
    assert template.filled((a, b, c)) == whole


def test_holes_out_of_order_or_missing_are_refused():
    with pytest.raises(ValueError, match="order"):
        Template(("SET", HOLE_C, HOLE_A), (HOLE_A, HOLE_C))
    with pytest.raises(ValueError, match="once"):
        Template(("SET", HOLE_A), (HOLE_A, HOLE_C))
    # Equal but not identical: a hole is a marker object, not a value.
    with pytest.raises(ValueError, match="once"):
        Template(("SET", "".join(["\x00", "a"])), (HOLE_A,))
