"""The message record's line-ending census and canonical digest: the one-replace fast path gives
what the plain definition gives (count every kind; normalise the body; strip; hash), on random
messages with every mix of line endings, and on a memory map."""
import hashlib
import mmap

import pytest
from hypothesis import given, settings, strategies as st

from leaktriage.mail import headers, message


def plain(data: bytes):
    """Written out from the definition, with no shortcut."""
    nl, cr, crlf = data.count(b"\n"), data.count(b"\r"), data.count(b"\r\n")
    kinds = [k for k, n in (("crlf", crlf), ("lf", nl - crlf), ("cr", cr - crlf)) if n]
    eol = "none" if not kinds else kinds[0] if len(kinds) == 1 else "mixed"
    hdr_end, body_start = headers.find_header_end(data, 0, len(data))
    fields, stop, _, _ = headers.parse_fields(data, 0, hdr_end)
    if stop < hdr_end:
        body_start = stop
    h = hashlib.sha256()
    for f in fields:
        if f.name.lower() in message.CANONICAL_HEADERS:
            h.update(f.name.lower().encode() + b":" + b" ".join(headers.unfold(f.raw).split()) + b"\n")
    h.update(b"\n")
    body = data[body_start:].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    h.update(body.rstrip(b"\n \t"))
    return fields, body_start, eol, h.hexdigest()


LINE = st.sampled_from([b"Subject: hello", b"From: a@b.example", b"X-Other: 1", b" folded", b"",
                        b"body text  ", b"\t", b"more", b"To: c@d.example", b"caf\xe9 \x00\xff\x85\x0b"])
EOL = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def messages(draw):
    lines = draw(st.lists(st.tuples(LINE, EOL), max_size=14))
    out = b"".join(a + (draw(EOL) if i % 3 == 0 else e) for i, (a, e) in enumerate(lines))
    return out + draw(st.sampled_from([b"", b"tail", b"\r", b" \t\n"]))


@settings(max_examples=4000, deadline=None)
@given(messages())
def test_fast_path_matches_definition(data):
    fields, body_start, eol, digest = plain(data)
    assert message.line_endings_and_canonical_digest(fields, data, body_start) == (eol, digest)
    assert message.line_endings(data) == eol


def expected_for(data, fields, body_start):
    h = hashlib.sha256()
    for f in fields:
        if f.name.lower() in message.CANONICAL_HEADERS:
            h.update(f.name.lower().encode() + b":" + b" ".join(headers.unfold(f.raw).split()) + b"\n")
    h.update(b"\n")
    h.update(data[body_start:].replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n \t"))
    return h.hexdigest()


def test_body_start_inside_a_crlf_pair():
    data = b"Subject: x\r\r\nbody\r\n\r\n  \n"
    fields, _, eol, _ = plain(data)
    body_start = data.index(b"\n")         # between the CR and the LF of a pair
    assert message.line_endings_and_canonical_digest(fields, data, body_start) == \
        (eol, expected_for(data, fields, body_start))


def test_memory_map(tmp_path):
    data = b"Subject: x\r\nFrom: y\r\n\r\nbody\r\nbare\nend\r\r\n  \n"
    fields, body_start, eol, digest = plain(data)
    assert eol == "mixed"
    p = tmp_path / "m.eml"
    p.write_bytes(data)
    with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert message.line_endings_and_canonical_digest(fields, mm, body_start) == (eol, digest)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b" ", b"\t", b"\r\n", b"\x0b", b"\x0c", b"\xa0", b"\x85", b"word", b"x", b"\x00"]),
                max_size=40).map(b"".join))
def test_long_values_collapse_like_split_and_join(value):
    """The regex path for long header values (no object per word) equals the split-and-join."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(message, "COLLAPSE_SPLIT_MAX", 0)
        assert message.collapse_white_space(value) == b" ".join(value.split())
