"""The base64 decoder's SIMD fast path gives exactly what the binascii path gives, problems and
decoder name included, on well-formed and on damaged input."""
import base64

import pytest
from hypothesis import given, settings, strategies as st

from leaktriage import transfer


def binascii_only(raw):
    saved = transfer._pybase64
    transfer._pybase64 = None
    try:
        return transfer.decode_base64(raw)
    finally:
        transfer._pybase64 = saved


def test_fast_path_is_taken():
    if transfer._pybase64 is None:
        pytest.fail("pybase64 is a declared dependency and must be importable")
    raw = base64.encodebytes(bytes(range(256)) * 40).replace(b"\n", b"\r\n")
    assert transfer.decode_base64(raw) == (bytes(range(256)) * 40, "base64", [])


@st.composite
def encoded(draw):
    data = draw(st.binary(max_size=400))
    text = bytearray(base64.encodebytes(data) if draw(st.booleans()) else base64.b64encode(data))
    # damage: insert, delete or replace characters from a base64-ish alphabet
    alphabet = b"AZaz09+/=\r\n \t-_*\x00\xff."
    for _ in range(draw(st.integers(0, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["ins", "del", "rep"]))
        c = alphabet[draw(st.integers(0, len(alphabet) - 1))]
        if op == "ins":
            text.insert(i, c)
        elif op == "del":
            del text[i]
        else:
            text[i] = c
    return bytes(text)


@settings(max_examples=3000, deadline=None)
@given(encoded())
def test_fast_path_equals_binascii_path(raw):
    assert transfer.decode_base64(raw) == binascii_only(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_equal(raw):
    assert transfer.decode_base64(raw) == binascii_only(raw)
