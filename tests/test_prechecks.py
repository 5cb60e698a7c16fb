"""Cheap pre-checks written with bytes searches agree with the regular expressions that define
them: the DKIM/ARC header pre-check and the header-block sniffer."""
import re

from hypothesis import example, given, settings, strategies as st

from leaktriage.content import mailshape
from leaktriage.auth import dkimverify

PIECES = st.sampled_from([b"DKIM-Signature", b"dkim-signature", b"xdkim-signature", b"ARC-Seal", b"arc-",
                          b"Arc-Message-Signature", b"ARC-1", b" ", b"\t", b":", b"\r\n", b"\n", b"\r",
                          b"Subject", b"From", b"To", b"x", b"a@b", b"\r\n\r\n", b"body", b"Date", b"-"])


def regex_has_header(raw, pattern):
    from leaktriage.mail.headers import find_header_end
    if b"\n" in raw[:65536]:
        head = raw[:find_header_end(raw, 0, len(raw))[0]]
    else:
        i = raw.find(b"\r\r")
        head = raw[:i] if i >= 0 else raw
    return re.search(rb"(?:^|[\r\n])" + pattern + rb"[ \t]*:", head, re.I) is not None


@settings(max_examples=5000, deadline=None)
@given(st.lists(PIECES, max_size=24))
def test_has_header_matches_regex(pieces):
    raw = b"".join(pieces)
    assert dkimverify._has_header(raw, b"dkim-signature") == regex_has_header(raw, rb"dkim-signature")
    assert dkimverify._has_header(raw, b"arc-") == regex_has_header(raw, rb"arc-[a-z-]+")


def regex_looks_like_message(prefix):
    p = mailshape.strip_bom(prefix).lstrip(b" \t\r\n")
    if p.startswith(b"From ") and not p.startswith(b"From: "):
        nl = p.find(b"\n")
        p = p[nl + 1:] if nl >= 0 else b""
    if not mailshape.HEADER_LINE.match(p):
        return False
    end = min(len(p), 16384)
    m = re.search(rb"\r?\n\r?\n", p[:end])
    block = p[: m.start()] if m else p[:end]
    if b"\x00" in block[:512]:
        return False
    lines = block.split(b"\n")[:60]
    good = sum(1 for ln in lines if mailshape.HEADER_LINE.match(ln) or ln[:1] in (b" ", b"\t"))
    if good < max(1, len(lines) // 2):
        return False
    if block[:6].upper() == b"BEGIN:":
        return False
    names = {m.group(1).lower() for m in mailshape.KNOWN.finditer(block)}
    return len(names) >= 2 or (len(names) == 1 and bool(mailshape.KNOWN.match(p)))


@settings(max_examples=5000, deadline=None)
@given(st.lists(PIECES, max_size=30))
def test_looks_like_message_matches_definition(pieces):
    raw = b"".join(pieces)
    assert mailshape.looks_like_message(raw) == regex_looks_like_message(raw)


LINES = st.sampled_from([b"Subject: x", b"X-A: 1", b" folded", b"\tmore", b"not a header", b"", b"a:b",
                         b"From: a@b", b"Date: now", b"junk junk", b"\r"])


@settings(max_examples=1500, deadline=None)
@example([b"Subject: x"] + [b"junk junk"] * 59 + [b"X-A: 1"] * 60, b"\n")  # only the first 60 lines count
@given(st.lists(LINES, min_size=40, max_size=140), st.sampled_from([b"\n", b"\r\n"]))
def test_looks_like_message_matches_definition_on_long_header_blocks(lines, eol):
    """Blocks longer than the 60 lines the sniffer judges."""
    raw = eol.join(lines)
    assert mailshape.looks_like_message(raw) == regex_looks_like_message(raw)
