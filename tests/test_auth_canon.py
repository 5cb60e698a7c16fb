"""Canonicalisation against the DKIM vectors of mailgun-flanker (tests/fixtures/messages/dkim/).

Each vector is email.NN with simple.expected.NN and relaxed.expected.NN: the whole message
canonicalised (every header field, the empty separator line, the canonical body). The files are
LF-only, so they are read the way verify_dkim reads a dump file: line endings converted first.
nofws.expected.NN is DomainKeys (RFC 4870) canonicalisation, which DKIM does not use: not checked.
"""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leaktriage.auth import canonical as M  # noqa: E402

CORPORA = Path(os.environ.get("LEAKTRIAGE_CORPORA") or REPO.parent / "shared" / "corpora")
VECTORS = CORPORA / "mailgun-flanker" / "tests" / "fixtures" / "messages" / "dkim"
NUMBERS = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14",
           "19", "20", "21", "22", "23", "24", "25"]


def need_vectors():
    if not VECTORS.is_dir():
        msg = "corpus folder %s is missing (set LEAKTRIAGE_CORPORA to the shared corpora folder)" % VECTORS
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def canonical_message(raw, alg):
    data, _ = M.normalise_line_endings(raw)
    headers, body, _ = M.split_message(data)
    return b"".join(M.canon_header(h, alg) for h in headers) + b"\r\n" + M.canon_body(body, alg)


def test_vector_set_is_complete():
    need_vectors()
    found = sorted(p.name.split(".")[1] for p in VECTORS.glob("email.*"))
    assert found == NUMBERS


@pytest.mark.parametrize("alg", ["simple", "relaxed"])
@pytest.mark.parametrize("num", NUMBERS)
def test_flanker_vector(num, alg):
    need_vectors()
    raw = (VECTORS / ("email." + num)).read_bytes()
    expected = (VECTORS / ("%s.expected.%s" % (alg, num))).read_bytes()
    assert canonical_message(raw, alg) == expected, (VECTORS / ("purpose." + num)).read_text()


def test_body_canonicalisation_rules():
    assert M.canon_body(b"", "simple") == b"\r\n"
    assert M.canon_body(b"", "relaxed") == b""
    assert M.canon_body(b"\r\n\r\n", "simple") == b"\r\n"
    assert M.canon_body(b"a  \t b \r\n\r\n\r\n", "relaxed") == b"a b\r\n"
    assert M.canon_body(b"a  \t b \r\n\r\n\r\n", "simple") == b"a  \t b \r\n"
    assert M.canon_header((b"SubJect ", b"  A\r\n \t B  \r\n"), "relaxed") == b"subject:A B\r\n"
    assert M.canon_header((b"SubJect ", b"  A\r\n \t B  \r\n"), "simple") == b"SubJect :  A\r\n \t B  \r\n"


def _relaxed_by_the_letter(body: bytes) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalisation written out with no shortcut."""
    import re
    b = re.sub(rb"[ \t]+\r\n", b"\r\n", body)
    b = re.sub(rb"[ \t]+", b" ", b)
    while b.endswith(b"\r\n\r\n"):
        b = b[:-2]
    if b == b"\r\n":
        b = b""
    if b and not b.endswith(b"\r\n"):
        b += b"\r\n"
    return b


def test_relaxed_body_shortcuts_change_nothing():
    """canon_body skips its regex passes when the body has no trailing, doubled or tab white space;
    the result must be the RFC's on every body, with and without such white space."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    pieces = st.sampled_from([b"a", b"xyz", b" ", b"  ", b"\t", b"\r\n", b"\r", b"\n", b"=", b"\xc3\xa9"])

    @hypothesis.settings(max_examples=3000, deadline=None)
    @hypothesis.given(st.lists(pieces, max_size=40))
    def check(parts):
        body = b"".join(parts)
        assert M.canon_body(body, "relaxed") == _relaxed_by_the_letter(body)

    check()
