"""pstndb, leaktriage's own MS-PST reader, against libpff (pypff) on the corpus PSTs and on hostile input.

The corpora come from $LEAKTRIAGE_CORPORA (default <repo>/../shared/corpora) like
tests/test_containers_corpus.py: missing corpora FAIL under $CI and are skipped otherwise. Nothing
is copied into the repository. The corpus PSTs are all Unicode files with NDB_CRYPT_PERMUTE, so
this module also builds, in memory, copies of one with NDB_CRYPT_NONE and NDB_CRYPT_CYCLIC blocks
and an ANSI (32-bit) copy, and checks pstndb against pypff on those too.
"""
from __future__ import annotations

import email
import email.policy
import io
import os
import random
import struct
import sys
import time
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from leaktriage.containers import outlook, pstndb  # noqa: E402
from leaktriage.model import container_codes as codes  # noqa: E402
from leaktriage.containers.base import Child, Context, Problem  # noqa: E402
from leaktriage.containers.pstndb import PstFormatError  # noqa: E402

pypff = pytest.importorskip("pypff")

CORPORA = os.environ.get("LEAKTRIAGE_CORPORA") or os.path.join(ROOT, "..", "shared", "corpora")
PSTS = ("aquasync-ruby-msg/test/pst/attachAndInline.pst", "aquasync-ruby-msg/test/pst/msgInMsg.pst",
        "rjohnsondev-java-libpst/src/test/resources/dist-list.pst",
        "rjohnsondev-java-libpst/src/test/resources/passworded.pst",
        # its recipient table is an 18-block heap (HNPAGEHDR / HNBITMAPHDR pages, an XBLOCK data tree)
        "aquasync-ruby-msg/test/pst/200 recipients.pst")
MSG_IN_MSG = PSTS[1]


def corpus(rel: str) -> bytes:
    path = os.path.join(CORPORA, *rel.split("/"))
    if not os.path.exists(path):
        if os.environ.get("CI"):
            pytest.fail("corpus file %s is missing (set LEAKTRIAGE_CORPORA)" % path)
        pytest.skip("corpus file %s is missing" % path)
    with open(path, "rb") as fh:
        return fh.read()


def pff(buf: bytes):
    f = pypff.file()
    f.open_file_object(io.BytesIO(buf))
    return f


# ----------------------------------------------------------------------------------------- pypff vs pstndb

def pff_raw(record_set) -> dict:
    return {e.entry_type: (e.value_type, e.data or b"") for e in record_set.entries}


def check_props(where: str, theirs: dict, ours: dict) -> None:
    for pid, value in theirs.items():
        assert ours.get(pid) == value, (where, hex(pid), value[0], ours.get(pid))


def check_rows(where: str, theirs: list, ours: list) -> None:
    assert len(theirs) == len(ours), where
    for i, (t, o) in enumerate(zip(theirs, ours)):
        for pid, (vt, raw) in t.items():
            if pid in o:
                assert o[pid] == (vt, raw), (where, i, hex(pid))
            else:
                # the row's cell existence bitmap says the cell is absent; libpff lists a zero value
                assert not raw.strip(b"\x00"), (where, i, hex(pid), raw)


def compare_with_pypff(buf: bytes) -> int:
    """Walk pypff's folder tree; pstndb must give the same folders, items, properties,
    recipients and attachments (bytes and names). Returns the number of items compared."""
    f = pff(buf)
    nd = pstndb.PstFile(buf)
    assert nd.crypt_method == f.encryption_type
    check_props("message store", pff_raw(f.message_store.get_record_set(0)), pstndb.PropertyContext(nd.node(0x21)).raw)
    items = 0
    stack = [f.root_folder]
    while stack:
        fo = stack.pop()
        folder = nd.folder(fo.identifier)
        if fo.number_of_record_sets:
            check_props("folder 0x%x" % fo.identifier, pff_raw(fo.get_record_set(0)), folder.raw_props)
        subs = [fo.get_sub_folder(i) for i in range(fo.number_of_sub_folders)]
        assert folder.subfolder_nids == [s.identifier for s in subs]
        msgs = [fo.get_sub_message(i) for i in range(fo.number_of_sub_messages)]
        assert folder.message_nids == [m.identifier for m in msgs]
        stack.extend(subs)
        for m in msgs:
            items += 1
            where = "item 0x%x" % m.identifier
            ours = nd.message(m.identifier)
            check_props(where, pff_raw(m.get_record_set(0)), ours.raw_props)
            rc = getattr(m, "recipients", None)
            theirs = [pff_raw(rc.get_record_set(i)) for i in range(rc.number_of_record_sets)] if rc is not None else []
            table = ours.node.find_subnode(pstndb.NID_RECIPIENT_TABLE)
            check_rows(where + " recipients", theirs, pstndb.TableContext(table).raw_rows if table else [])
            assert len(ours.recipients) == len(theirs)
            natt = getattr(m, "number_of_attachments", 0)
            assert len(ours.attachments) == natt, where
            for i, a in enumerate(ours.attachments):
                pa = m.get_attachment(i)
                assert a.nid == pa.identifier          # pypff's attachment identifier is its sub-node NID
                check_props(where + " attachment %d" % i, pff_raw(pa.get_record_set(0)), a.raw_props)
                assert (a.data or b"") == (pa.read_buffer(pa.size) if pa.size else b"")
                assert a.props.get(0x3707) == pa.long_filename                # None for embedded messages
    return items


@pytest.mark.parametrize("rel", PSTS)
def test_matches_pypff(rel):
    assert compare_with_pypff(corpus(rel)) >= 1


def test_msg_in_msg_embedded_message():
    """The attached message of msgInMsg.pst, read through its sub-nodes, checked against what
    does not depend on pstndb: the raw property block libpff hands out (parsed by
    outlook.parse_pc_heap) and the properties that restate the recipients."""
    buf = corpus(MSG_IN_MSG)
    nd = pstndb.PstFile(buf)
    msg = nd.message(0x200024)
    assert [(a.nid, a.method) for a in msg.attachments] == [(0x8025, 5), (0x8045, 1)]
    att = msg.attachment(0x8025)
    inner = att.embedded_message()
    p = inner.props
    assert inner.nid == 0x200044
    # libpff's raw block is the embedded message's property context: same bytes, same heap values
    pa = pff(buf).root_folder.get_sub_folder(1).get_sub_message(0).get_attachment(0)
    block = pa.read_buffer(pa.size)
    assert block == inner.node.data()
    heap_props, in_subnodes = outlook.parse_pc_heap(block, "cp1252")
    assert in_subnodes == 1 and {k: p[k] for k in heap_props} == heap_props
    # ... the one value kept in a sub-node is the transport header block
    assert set(p) - set(heap_props) == {0x007D}
    assert "\r\nTo: =?utf-8?B?eG1haWx1c2Vy?= <xmailuser@xmailserver.test>\r\n" in p[0x007D]   # "xmailuser"
    # the recipient table (sub-node 0x692): one To recipient, as PR_DISPLAY_TO and the To header say
    assert p[0x0E04] == "xmailuser"
    assert [(r[0x0C15], r[0x3001], r[0x3003], r[0x3002]) for r in inner.recipients] == \
        [(1, "xmailuser", "xmailuser@xmailserver.test", "SMTP")]
    # no attachment table: PR_HASATTACH is not set and there is no sub-node 0x671
    assert inner.attachments == [] and inner.node.find_subnode(pstndb.NID_ATTACHMENT_TABLE) is None
    assert not p[0x0E07] & 0x10                     # PR_MESSAGE_FLAGS: no MSGFLAG_HASATTACH
    assert p[0x0E08] == struct.unpack_from("<I", att.raw_props[0x3701][1], 4)[0] == 4294   # PtypObject ulSize
    assert p[0x0037] == "\x01\x01Microsoft Outlook テスト メッセージ"
    assert p[0x1000].startswith("この電子メール メッセージは")


def test_dist_list_embedded_exceptions():
    """The recurrence exceptions of dist-list.pst are embedded messages with an empty attachment table."""
    nd = pstndb.PstFile(corpus(PSTS[2]))
    bodies = []
    for a in nd.message(0x2000C4).attachments:
        assert a.method == 5
        inner = a.embedded_message()
        assert inner.node.find_subnode(pstndb.NID_ATTACHMENT_TABLE) is not None and inner.attachments == []
        assert inner.recipients == []
        bodies.append(inner.props[0x1000])
    assert bodies == ["This is the appointment at 9\r\n", "This is the one at 10\r\n"]


def test_scan_rebuilds_embedded_message_completely():
    items = list(outlook.read_pst(corpus(MSG_IN_MSG), Context(locator="msgInMsg.pst", depth=0)))
    ch = [i for i in items if isinstance(i, Child)]
    assert len(ch) == 1 and not [p for p in ch[0].problems if p.code.startswith("pst.embedded")]
    m = email.message_from_bytes(ch[0].data, policy=email.policy.default)
    inner = [p for p in m.walk() if p.get_content_type() == "message/rfc822"][0].get_content()
    assert inner["to"].addresses[0].addr_spec == "xmailuser@xmailserver.test"
    assert inner["return-path"] == "<xmailuser@xmailserver.test>"


# ----------------------------------------------------------------------------------------- encodings

def crc(data: bytes) -> int:
    """[MS-PST] 5.3 ComputeCRC from 0: CRC-32 without zlib's pre- and post-inversion."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def unicode_pages(buf: bytes, root: tuple):
    """(ib, bid, level, entries) of every page of a Unicode B-tree, read without pstndb."""
    stack = [root]
    while stack:
        bid, ib = stack.pop()
        page = buf[ib:ib + 512]
        c_ent, _max, cb_ent, level = page[488:492]
        entries = [page[i * cb_ent:(i + 1) * cb_ent] for i in range(c_ent)]
        yield ib, bid, level, entries
        if level:
            stack.extend(struct.unpack_from("<QQ", e, 8) for e in entries)


def unicode_blocks(buf: bytes):
    """(bid, ib, cb) of every block in the block B-tree of a Unicode PST."""
    bbt = struct.unpack_from("<QQ", buf, 232)
    for _ib, _bid, level, entries in unicode_pages(buf, bbt):
        if not level:
            for e in entries:
                yield struct.unpack_from("<QQH", e)


def recoded(buf: bytes, method: int) -> bytes:
    """A copy of a permute-encoded Unicode PST whose data blocks use another bCryptMethod."""
    assert buf[513] == pstndb.NDB_CRYPT_PERMUTE
    out = bytearray(buf)
    for bid, ib, cb in unicode_blocks(buf):
        if bid & 2:
            continue
        plain = pstndb.crypt_permute(buf[ib:ib + cb], encrypt=False)
        enc = {pstndb.NDB_CRYPT_NONE: plain, pstndb.NDB_CRYPT_CYCLIC: pstndb.crypt_cyclic(plain, bid & 0xFFFFFFFF)}[method]
        out[ib:ib + cb] = enc
        struct.pack_into("<I", out, ib + ((cb + 16 + 63) & ~63) - 12, crc(enc))
    out[513] = method
    struct.pack_into("<I", out, 524, crc(bytes(out[8:524])))
    return bytes(out)


def test_crypt_tables_are_the_spec_permutations():
    r, s, i = pstndb._R, pstndb._S, pstndb._I
    assert sorted(r) == sorted(s) == sorted(i) == list(range(256))
    assert all(i[r[b]] == b for b in range(256))          # I decodes what R encodes
    assert all(s[s[b]] == b for b in range(256))          # S is its own inverse: CryptCyclic is symmetric
    assert r[:8] == bytes([65, 54, 19, 98, 168, 33, 110, 187]) and i[:4] == bytes([71, 241, 180, 230])


def test_crypt_round_trips():
    rnd = random.Random(5)
    data = bytes(rnd.randrange(256) for _ in range(3000))
    assert pstndb.crypt_permute(pstndb.crypt_permute(data, True), False) == data
    for key in (0, 1, 0x1234, 0xFFFF, 0x10000, 0xDEADBEEF, 0xFFFFFFFF):
        enc = pstndb.crypt_cyclic(data, key)
        assert enc != data and pstndb.crypt_cyclic(enc, key) == data
    assert pstndb.crypt_cyclic(data, 0x10001) == pstndb.crypt_cyclic(data, 0)   # the key is folded to 16 bits


def cyclic_by_the_book(data: bytes, key: int) -> bytes:
    """[MS-PST] 5.2 CryptCyclic as the specification writes it: one byte at a time."""
    r, s, i = pstndb._R, pstndb._S, pstndb._I
    w = (key ^ (key >> 16)) & 0xFFFF
    out = bytearray()
    for b in data:
        lo, hi = w & 0xFF, w >> 8
        b = s[(r[(b + lo) & 0xFF] + hi) & 0xFF]
        out.append((i[(b - hi) & 0xFF] - lo) & 0xFF)
        w = (w + 1) & 0xFFFF
    return bytes(out)


def test_cyclic_table_version_equals_the_byte_loop():
    rnd = random.Random(11)
    for n in (0, 1, 255, 256, 257, 1000, 8176, 70000):
        data = bytes(rnd.randrange(256) for _ in range(n))
        for key in (0, 0xFF, 0x1FF, 0xFFFE, 0xFFFF, rnd.randrange(1 << 32)):
            assert pstndb.crypt_cyclic(data, key) == cyclic_by_the_book(data, key), (n, key)


def test_permute_decoding_matches_pypff():
    """Every corpus PST uses NDB_CRYPT_PERMUTE ("compressible"): the attachment data decoded by
    pstndb is pypff's, and re-encoding it gives the bytes on disk."""
    for rel in PSTS:
        buf = corpus(rel)
        assert pff(buf).encryption_type == pstndb.PstFile(buf).crypt_method == pstndb.NDB_CRYPT_PERMUTE
    buf = corpus(PSTS[0])
    nd = pstndb.PstFile(buf)
    att = nd.message(0x200024).attachment(0x8025)
    assert att.data.startswith(b"\x89PNG") and len(att.data) == 1558
    # PR_ATTACH_DATA_BIN is an HNID naming a sub-node of the attachment: one data block
    bid, = [b for b, _sub in nd.subnode_table(att.node.bid_sub, "x").values() if nd.block(b) == att.data]
    ib, cb = nd.block_ref(bid)
    raw = buf[ib:ib + cb]
    assert raw != att.data
    assert pstndb.crypt_permute(att.data, encrypt=True) == raw


@pytest.mark.parametrize("method", [pstndb.NDB_CRYPT_NONE, pstndb.NDB_CRYPT_CYCLIC])
def test_other_encodings_match_pypff(method):
    """pypff reads a copy re-encoded with NDB_CRYPT_NONE / NDB_CRYPT_CYCLIC (its encryption_type
    says so) exactly like the original, and so does pstndb."""
    for rel in (PSTS[0], MSG_IN_MSG):
        buf = recoded(corpus(rel), method)
        assert pff(buf).encryption_type == method
        assert compare_with_pypff(buf) == 1
    assert pstndb.PstFile(buf).message(0x200024).attachment(0x8025).embedded_message().recipients[0][0x3001] == "xmailuser"


# ----------------------------------------------------------------------------------------- ANSI

def ansi_copy(buf: bytes) -> bytes:
    """An ANSI (wVer 14, 32-bit) rewrite of a small Unicode PST, in place: every B-tree page,
    block trailer, XBLOCK, SLBLOCK and SIBLOCK gets the ANSI layout, the header too."""
    out = bytearray(buf)
    new_cb = {}
    for bid, ib, cb in unicode_blocks(buf):
        data = buf[ib:ib + cb]
        if bid & 2 and data[0] == 0x01:                        # XBLOCK / XXBLOCK
            n = struct.unpack_from("<H", data, 2)[0]
            data = data[:8] + b"".join(struct.pack("<I", x) for x in struct.unpack_from("<%dQ" % n, data, 8))
        elif bid & 2 and data[0] == 0x02:                      # SLBLOCK / SIBLOCK
            n, size = struct.unpack_from("<H", data, 2)[0], (16 if data[1] else 24)
            fields = [(f[0] & 0xFFFFFFFF,) + f[1:]                  # a NID is 32 bits, padded to 8 bytes
                      for f in (struct.unpack_from("<QQ" if data[1] else "<QQQ", data, 8 + i * size) for i in range(n))]
            data = data[:4] + b"".join(struct.pack("<II" if data[1] else "<III", *f) for f in fields)
        new_cb[bid] = len(data)
        out[ib:ib + ((cb + 16 + 63) & ~63)] = bytes((cb + 16 + 63) & ~63)
        out[ib:ib + len(data)] = data
        x = ib ^ bid
        struct.pack_into("<HHII", out, ib + ((len(data) + 12 + 63) & ~63) - 12,
                         len(data), (x ^ (x >> 16)) & 0xFFFF, bid, crc(data))
    for tree in (216, 232):
        for ib, bid, level, entries in unicode_pages(buf, struct.unpack_from("<QQ", buf, tree)):
            page = bytearray(512)
            for i, e in enumerate(entries):
                if level:
                    key, cbid, cib = struct.unpack_from("<QQQ", e)
                    struct.pack_into("<III", page, i * 12, key, cbid, cib)
                elif tree == 216:
                    nid, bdata, bsub, parent = struct.unpack_from("<QQQI", e)
                    struct.pack_into("<IIII", page, i * 16, nid & 0xFFFFFFFF, bdata, bsub, parent)
                else:
                    bbid, bib, cb, cref = struct.unpack_from("<QQHH", e)
                    struct.pack_into("<IIHH", page, i * 12, bbid, bib, new_cb[bbid], cref)
            size = 12 if level or tree == 232 else 16
            page[496:500] = bytes([len(entries), 496 // size, size, level])
            page[500:504] = buf[ib + 496:ib + 500]              # ptype, ptypeRepeat, wSig
            struct.pack_into("<II", page, 504, bid, crc(bytes(page[:500])))
            out[ib:ib + 512] = page
    q = lambda off: struct.unpack_from("<Q", buf, off)[0]   # noqa: E731
    head = bytearray(512)
    head[0:4], head[8:10], head[12:24] = b"!BDN", buf[8:10], buf[12:24]
    struct.pack_into("<H", head, 10, 14)                      # wVer: ANSI
    struct.pack_into("<III", head, 24, q(516), q(32), struct.unpack_from("<I", buf, 40)[0])  # bidNextB, bidNextP, dwUnique
    head[36:164] = buf[44:172]                                # rgnid
    # ROOT: ibFileEof, ibAMapLast, cbAMapFree, cbPMapFree, BREFNBT, BREFBBT, fAMapValid
    struct.pack_into("<9IB", head, 164, 0, len(buf), *[q(o) for o in (192, 200, 208, 216, 224, 232, 240)], buf[248])
    head[204:460] = buf[256:512]                              # rgbFM, rgbFP
    head[460], head[461] = 0x80, buf[513]
    struct.pack_into("<I", head, 4, crc(bytes(head[8:8 + 471])))
    out[0:564] = bytes(head) + bytes(52)
    return bytes(out)


def test_ansi_matches_pypff():
    for rel in (PSTS[0], MSG_IN_MSG, PSTS[2]):
        buf = ansi_copy(corpus(rel))
        nd = pstndb.PstFile(buf)
        assert nd.version == 14 and not nd.fmt.unicode
        assert compare_with_pypff(buf) >= 1
    inner = nd.message(0x2000C4).attachments[0].embedded_message()
    assert inner.props[0x1000] == "This is the appointment at 9\r\n"


# ----------------------------------------------------------------------------------------- hostile input

def read_everything(nd: pstndb.PstFile) -> int:
    """Everything pstndb can reach from the root folder; returns the number of messages read."""
    count = 0
    seen = set()
    stack = [(pstndb.NID_ROOT_FOLDER, 0)]
    nd.message_store
    while stack:
        nid, depth = stack.pop()
        if nid in seen or depth > 32:
            continue
        seen.add(nid)
        folder = nd.folder(nid)
        folder.props
        stack.extend((n, depth + 1) for n in folder.subfolder_nids)
        todo = [(nd.message(n), 0) for n in folder.message_nids]
        while todo:
            m, level = todo.pop()
            count += 1
            m.props
            m.recipients
            for a in m.attachments:
                a.props
                if a.method == 5 and level < 4:
                    todo.append((a.embedded_message(), level + 1))
                else:
                    a.data
    return count


def structures(buf: bytes):
    """Offsets worth damaging: B-tree pages, data blocks (with their sizes) and internal blocks."""
    pages = [ib for tree in (216, 232) for ib, *_ in unicode_pages(buf, struct.unpack_from("<QQ", buf, tree))]
    blocks = [(ib, cb) for bid, ib, cb in unicode_blocks(buf) if not bid & 2]
    internal = [(ib, cb) for bid, ib, cb in unicode_blocks(buf) if bid & 2]
    return pages, blocks, internal


def mutate(buf: bytes, rnd: random.Random, pages, blocks, internal) -> bytes:
    out = bytearray(buf)
    kind = rnd.randrange(8)
    if kind == 0:                                            # bit flips anywhere
        for _ in range(rnd.randint(1, 8)):
            p = rnd.randrange(len(out))
            out[p] ^= 1 << rnd.randrange(8)
    elif kind == 1:                                          # truncation
        return bytes(out[:rnd.randrange(len(out))])
    elif kind == 2:                                          # page counters / level / entry size
        ib = rnd.choice(pages)
        out[ib + rnd.randrange(488, 512)] = rnd.choice((0, 1, 2, 0x7F, 0x80, 0x81, 0xFF, rnd.randrange(256)))
    elif kind == 3:                                          # a BREF or key in a page: random, self, other page
        ib = rnd.choice(pages)
        slot = ib + rnd.randrange(20) * 24 + rnd.choice((0, 8, 16))
        struct.pack_into("<Q", out, slot, rnd.choice((ib, rnd.choice(pages), rnd.randrange(1 << 20),
                                                      rnd.randrange(1 << 63), 0)))
    elif kind == 4:                                          # bytes inside a data block (heap, PC, TC, ...)
        ib, cb = rnd.choice(blocks)
        for _ in range(rnd.randint(1, 4)):
            out[ib + rnd.randrange(max(cb, 1))] = rnd.randrange(256)
    elif kind == 5:                                          # a block trailer's size or BID
        ib, cb = rnd.choice(blocks + internal)
        t = ib + ((cb + 16 + 63) & ~63) - 16
        struct.pack_into("<H" if rnd.random() < 0.5 else "<Q", out, t if rnd.random() < 0.5 else t + 8,
                         rnd.randrange(1 << 16))
    elif kind == 6:                                          # XBLOCK / SLBLOCK / SIBLOCK headers and entries
        ib, cb = rnd.choice(internal)
        p = ib + rnd.randrange(max(cb, 1))
        out[p] = rnd.choice((0, 1, 2, 0xFF, rnd.randrange(256)))
    else:                                                    # the header
        p = rnd.choice((10, 11, 513, 216, 224, 232, 240, 184, rnd.randrange(564)))
        out[p] = rnd.randrange(256)
    return bytes(out)


@pytest.mark.parametrize("rel", PSTS)
def test_mutations_raise_only_pst_format_error(rel):
    buf = corpus(rel)
    assert read_everything(pstndb.PstFile(buf)) >= 1
    rnd = random.Random("pstndb:" + rel)
    pages, blocks, internal = structures(buf)
    outcomes = {"ok": 0, "error": 0}
    start = time.monotonic()
    for n in range(300):
        bad = mutate(buf, rnd, pages, blocks, internal)
        t0 = time.monotonic()
        try:
            read_everything(pstndb.PstFile(bad))
            outcomes["ok"] += 1
        except PstFormatError as e:
            assert str(e)
            outcomes["error"] += 1
        assert time.monotonic() - t0 < 2, "mutation %d of %s took too long" % (n, rel)
    assert outcomes["error"] >= 100 and outcomes["ok"] >= 10, outcomes
    assert time.monotonic() - start < 60


def test_truncated_file():
    buf = corpus(MSG_IN_MSG)
    for n in (0, 100, 511, 563):
        with pytest.raises(PstFormatError, match="too short"):
            pstndb.PstFile(buf[:n])
    # the tail of a small PST is free space: cut inside the node B-tree root and inside the
    # blocks of the message and of its embedded message
    nd = pstndb.PstFile(buf)
    cuts = [600, 0x4400, struct.unpack_from("<Q", buf, 224)[0] + 100]
    for node in (nd.node(0x200024), nd.message(0x200024).attachment(0x8025).embedded_message().node):
        ib, cb = nd.block_ref(node.bid_data)
        cuts.append(ib + cb // 2)
    for n in cuts:
        with pytest.raises(PstFormatError, match="outside the file.*truncated"):
            read_everything(pstndb.PstFile(buf[:n]))


def test_cyclic_btrees():
    buf = corpus(MSG_IN_MSG)
    for tree, lookup in ((216, lambda nd: nd.node(0x21)), (232, lambda nd: nd.block(nd.node(0x21).bid_data))):
        bid, ib = struct.unpack_from("<QQ", buf, tree)
        assert buf[ib + 491] >= 1                            # the root is an intermediate page
        bad = bytearray(buf)
        for i in range(buf[ib + 488]):                       # every entry points back to it
            struct.pack_into("<QQ", bad, ib + 24 * i + 8, bid, ib)
        with pytest.raises(PstFormatError, match="cycle"):
            lookup(pstndb.PstFile(bytes(bad)))
        bad[ib + 491] = 0xFF                                 # a forged level is refused before any descent
        with pytest.raises(PstFormatError, match="level"):
            lookup(pstndb.PstFile(bytes(bad)))


def test_sub_node_tree_cycle_and_data_tree_limits():
    """An SIBLOCK naming itself and an XBLOCK naming itself are refused (fixed tree depths)."""
    buf = corpus(PSTS[2])
    nd = pstndb.PstFile(buf)
    internal = [(bid, ib, cb) for bid, ib, cb in unicode_blocks(buf) if bid & 2]
    sl = [(bid, ib) for bid, ib, cb in internal if buf[ib] == 0x02]
    assert sl
    bid, ib = sl[0]
    bad = bytearray(buf)
    bad[ib + 1] = 1                                          # SLBLOCK -> SIBLOCK whose entries' "bid" ...
    struct.pack_into("<QQ", bad, ib + 8, 0x692, bid)         # ... is the block itself
    with pytest.raises(PstFormatError, match="sub-node block"):
        pstndb.PstFile(bytes(bad)).subnode_table(bid, "test")
    bad = bytearray(buf)
    bad[ib:ib + 16] = struct.pack("<BBHIQ", 0x01, 1, 1, 100, bid)   # an XBLOCK naming itself
    with pytest.raises(PstFormatError, match="internal BID"):
        pstndb.PstFile(bytes(bad)).data_blocks(bid, "test")
    assert nd.subnode_table(bid, "test")


def test_header_errors():
    buf = corpus(MSG_IN_MSG)
    for offset, value, message in ((10, 36, "4 KiB"), (10, 20, "unsupported PST version"), (0, 0x00, "magic"),
                                   (8, 0x41, "client magic"), (513, 0x10, "bCryptMethod")):
        bad = bytearray(buf)
        bad[offset] = value
        with pytest.raises(PstFormatError, match=message):
            pstndb.PstFile(bytes(bad))


def test_forged_sizes_do_not_allocate():
    """A data tree declaring more than the limit (default: the file size) is refused before its
    blocks are read, and one whose blocks hold more than it declares stops at the first excess."""
    buf = corpus(MSG_IN_MSG)
    bid, ib, _cb = [b for b in unicode_blocks(buf) if b[0] & 2 and buf[b[1]] == 0x01][0]    # an XBLOCK
    assert sum(map(len, pstndb.PstFile(buf).data_blocks(bid, "x"))) == struct.unpack_from("<I", buf, ib + 4)[0] == 8753
    with pytest.raises(PstFormatError, match="declares 8753 bytes, more than the limit of 8000"):
        pstndb.PstFile(buf, max_data=8000).data_blocks(bid, "x")
    for lcb, message in ((0xFFFFFFFF, "declares 4294967295 bytes, more than the limit of %d" % len(buf)),
                         (100, "declares 100 bytes, its blocks hold more")):
        bad = bytearray(buf)
        struct.pack_into("<I", bad, ib + 4, lcb)
        with pytest.raises(PstFormatError, match=message):
            pstndb.PstFile(bytes(bad)).data_blocks(bid, "x")


# ----------------------------------------------------------------------------------------- the scan

def test_scan_falls_back_when_pstndb_fails():
    """Damage only the embedded message's own sub-node tree (libpff never reads it): the item is
    still read, the embedded message is rebuilt from its property block, and problems say so."""
    buf = corpus(MSG_IN_MSG)
    nd = pstndb.PstFile(buf)
    inner = nd.message(0x200024).attachment(0x8025).embedded_message()
    ib, _cb = nd.block_ref(inner.node.bid_sub)
    bad = bytearray(buf)
    bad[ib] = 0x07                                           # btype of its SLBLOCK
    items = list(outlook.read_pst(bytes(bad), Context(locator="x.pst", depth=0)))
    ch = [i for i in items if isinstance(i, Child)]
    assert len(ch) == 1
    found = {p.code: p for p in ch[0].problems}
    assert "BID 0x%x" % inner.node.bid_sub in found["pst.embedded_message_unreadable"].message
    assert found["pst.embedded_message_partial"].detail == {"missing_values": 1}
    m = email.message_from_bytes(ch[0].data, policy=email.policy.default)
    sub = [p for p in m.walk() if p.get_content_type() == "message/rfc822"][0].get_content()
    assert sub["subject"] == "Microsoft Outlook テスト メッセージ" and sub["received"] is None


@pytest.mark.parametrize("rel", (PSTS[1], PSTS[2]))
def test_outlook_reader_on_mutations(rel):
    """The scan never crashes on damaged PSTs: children and problem records only, registered codes."""
    buf = corpus(rel)
    rnd = random.Random("outlook:" + rel)
    pages, blocks, internal = structures(buf)
    seen = set()
    for _ in range(40):
        bad = mutate(buf, rnd, pages, blocks, internal)
        t0 = time.monotonic()
        for it in outlook.read_pst(bad, Context(locator="x.pst", depth=0)):
            assert isinstance(it, (Child, Problem))
            for p in ([it] if isinstance(it, Problem) else it.problems):
                assert p.code in codes.CODES, p.code
                seen.add(p.code)
        assert time.monotonic() - t0 < 5
    assert seen & {"pst.unreadable", "pst.item_unreadable", "pst.folder_unreadable",
                   "pst.embedded_message_unreadable", "msg.attachment_unreadable"}
