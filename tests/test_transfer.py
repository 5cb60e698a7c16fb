"""The base64 decoder's SIMD fast path gives exactly what the binascii path gives, problems and
decoder name included, on well-formed and on damaged input."""
import base64

import pytest
from hypothesis import given, settings, strategies as st

from leaktriage.mail import transfer


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


@pytest.mark.parametrize("cte", ["base64", None])
def test_a_body_on_one_giant_line_is_streamed_in_bounded_chunks(cte):
    """No line break for megabytes (a hostile or broken export): identity and base64 bodies are
    still cut every STREAM_CHUNK bytes, not taken whole, and decode to the same bytes."""
    import os
    payload = os.urandom(int(transfer.STREAM_CHUNK * 2.6))
    body = base64.b64encode(payload) if cte else payload.replace(b"\n", b"x")
    chunks = list(transfer.iter_decoded(body, 0, len(body), cte))
    assert b"".join(chunks) == (payload if cte else body)
    assert len(chunks) >= 3 and max(map(len, chunks)) <= transfer.STREAM_CHUNK + 3


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(4, 64), st.sampled_from([b"", b"\n", b"\r\n", b" "]))
def test_streamed_base64_equals_whole_decode_at_any_chunk_size(payload, chunk, sep):
    enc = base64.b64encode(payload)
    body = sep.join(enc[i:i + 19] for i in range(0, len(enc), 19))
    """Streaming gives the whole decode's bytes, or gives up (StreamAbort: the caller then
    decodes in one piece) only when padding is there to be split from the data by a chunk cut."""
    for tail in (b"", b"\r\n"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(transfer, "STREAM_CHUNK", chunk)
            try:
                got = b"".join(transfer.iter_decoded(body + tail, 0, len(body + tail), "base64"))
            except transfer.StreamAbort:
                assert enc.endswith(b"=")
                continue
        assert got == payload


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.lists(st.tuples(st.integers(0, 600), st.sampled_from([b"!", b"*", b"\x00", b"\xe9", b"-_"])),
                                         max_size=4), st.integers(4, 40))
def test_streamed_decode_with_invalid_characters_equals_the_repairing_decoder(payload, junk, chunk):
    """A large base64 body with stray characters is decoded in chunks with the result, decoder
    name and problem of the whole-body repairing decoder (or handed back to it: None)."""
    from leaktriage.content import digests as digesting
    from leaktriage.mail import mime
    enc = bytearray(b"\n".join(base64.b64encode(payload)[i:i + 30] for i in range(0, len(payload) * 2, 30)))
    for pos, j in junk:
        enc[min(pos, len(enc)):min(pos, len(enc))] = j
    body = bytes(enc)
    data, decoder, probs = transfer.decode(body, "base64")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transfer, "STREAM_CHUNK", chunk)
        got = mime._stream(body, 0, len(body), "base64", ("sha256",))
    if got is None:
        assert not payload or base64.b64encode(payload).endswith(b"=")   # padding split by a cut
        return
    size, digests, head, got_decoder, got_probs = got
    assert (size, digests["sha256"], got_decoder, got_probs) == \
        (len(data), digesting.digests(data)["sha256"], decoder, probs)
