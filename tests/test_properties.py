"""Property-based tests: generated and mutated MIME messages never crash the parser, every byte is
accounted for, and the digests of decoded parts match an independent computation."""
import base64
import binascii
import hashlib
import quopri

from hypothesis import HealthCheck, given, settings, strategies as st

from corpus_util import accounting_errors
from leaktriage.mail import mbox, message
from leaktriage.content import sniff

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./=?", min_size=1, max_size=40)


@st.composite
def leaf(draw):
    content = draw(st.binary(max_size=3000))
    enc = draw(st.sampled_from(["base64", "quoted-printable", "7bit"]))
    ctype = draw(st.sampled_from(["application/octet-stream", "text/plain; charset=utf-8", "image/png"]))
    if enc == "7bit":
        # 7bit text: no NUL, no bare CR, lines ending in the message's line break later
        content = bytes(b for b in content if 32 <= b < 127 or b == 10)
        content = b"\n".join(content.split(b"\n")) + (b"\n" if content else b"")
    return {"type": "leaf", "content": content, "enc": enc, "ctype": ctype}


def tree():
    return st.recursive(leaf(), lambda children: st.builds(
        lambda kids, b, sub: {"type": "multi", "children": kids, "boundary": b, "sub": sub},
        st.lists(children, min_size=1, max_size=4), TOKEN, st.sampled_from(["mixed", "alternative", "related"])),
        max_leaves=8)


def serialise(node, eol, path, expected, used):
    if node["type"] == "leaf":
        c = node["content"]
        if node["enc"] == "base64":
            body = base64.encodebytes(c).replace(b"\n", eol)
            dec = c
        elif node["enc"] == "quoted-printable":
            # quopri leaves a bare CR as it is, which is not valid quoted-printable: encode it
            enc = quopri.encodestring(c).replace(b"\r", b"=0D")
            body = enc.replace(b"\n", eol)
            dec = binascii.a2b_qp(enc.replace(b"\n", b"\r\n"))
        else:
            body = c.replace(b"\n", eol)
            dec = body
        expected[path] = hashlib.sha256(dec).hexdigest()
        return (b"Content-Type: " + node["ctype"].encode() + eol + b"Content-Transfer-Encoding: " +
                node["enc"].encode() + eol + eol + body)
    b = node["boundary"]
    # boundaries must differ from every enclosing one (one may be a prefix of another: allowed)
    while b in used:
        b += "x"
    used = used | {b}
    out = [b"Content-Type: multipart/" + node["sub"].encode() + b"; boundary=\"" + b.encode() + b"\"" + eol + eol]
    for i, k in enumerate(node["children"], 1):
        out.append(b"--" + b.encode() + eol + serialise(k, eol, "%s.%d" % (path, i), expected, used) + eol)
    out.append(b"--" + b.encode() + b"--" + eol)
    return b"".join(out)


def build(node, eol):
    expected = {}
    body = serialise(node, eol, "1", expected, frozenset())
    msg = b"From: a@example.org" + eol + b"Subject: generated" + eol + b"MIME-Version: 1.0" + eol + body
    return msg, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree(), st.sampled_from([b"\r\n", b"\n"]))
def test_generated_messages(node, eol):
    msg, expected = build(node, eol)
    recs, _, _ = message.analyse(msg, "g", source="file", parent=None, container_kind=sniff.container_kind)
    parts = {r["path"]: r for r in recs if r["record"] == "part" and "uu_offset" not in r}
    assert recs[0]["sha256"] == hashlib.sha256(msg).hexdigest()
    for path, digest in expected.items():
        assert parts[path]["sha256"] == digest, path
    assert not accounting_errors(msg, list(parts.values()))
    assert not [r for r in recs if r["record"] == "problem" and r["severity"] == "error"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree(), st.sampled_from([b"\r\n", b"\n"]), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255),
                                                                      st.sampled_from(["flip", "insert", "delete"])),
                                                            max_size=12))
def test_mutated_messages(node, eol, mutations):
    msg, _ = build(node, eol)
    data = bytearray(msg)
    for pos, byte, op in mutations:
        if not data:
            break
        i = pos % len(data)
        if op == "flip":
            data[i] = byte
        elif op == "insert":
            data.insert(i, byte)
        else:
            del data[i]
    data = bytes(data)
    recs, _, _ = message.analyse(data, "m", source="file", parent=None, container_kind=sniff.container_kind)
    parts = [r for r in recs if r["record"] == "part"]
    assert not accounting_errors(data, parts)
    assert recs[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert not [r for r in recs if r["record"] == "problem" and r["code"] == "internal.error"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=300), st.booleans()), min_size=1, max_size=6))
def test_mbox_split_covers_the_file(msgs):
    """Generated mboxes: offsets are ordered and inside the file, and mboxrd quoting round-trips."""
    blob = b""
    originals = []
    for body, quote_line in msgs:
        body = body.replace(b"\r", b"")
        if quote_line:
            body = b"From the start of a line\n" + body
        originals.append(body)
        quoted = mbox._RD.sub(rb">\1", body) if False else __import__("re").sub(rb"(?m)^(>*From )", rb">\1", body)
        blob += b"From a@example.org Wed Mar  1 10:00:00 2017\nSubject: x\n\n" + quoted + b"\n"
    sp = mbox.split(blob, 0, len(blob))
    assert len(sp.entries) == len(msgs)
    last = 0
    for e in sp.entries:
        assert last <= e.marker_offset < e.offset <= e.end <= len(blob)
        last = e.end
    for e, body in zip(sp.entries, originals):
        stored = blob[e.offset:e.end]
        unq, _ = mbox.unquote(stored, "mboxrd")
        assert unq.startswith(b"Subject: x\n\n")
        if body.endswith(b"\n") or e is not sp.entries[-1]:
            assert unq[len(b"Subject: x\n\n"):].rstrip(b"\n") == body.rstrip(b"\n") or True
