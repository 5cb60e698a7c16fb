"""A small read-only reader of the MS-PST format (NDB and LTP layers), for what libpff hides.

libpff (pypff) reads PST/OST files well but hands out an attached message (PR_ATTACH_METHOD 5,
afEmbeddedMessage) only as its raw property-context block: the embedded message's sub-nodes (its
recipient table, its attachments, values too large for the heap) are not reachable through it.
This module reads those structures itself, following the [MS-PST] open specification:

- NDB layer: the HEADER (ANSI wVer 14/15 and Unicode wVer 23; the 4 KiB-page OST, wVer 36, is
  refused), the node and block B-trees (BTPAGE / BTENTRY / NBTENTRY / BBTENTRY), data blocks with
  their trailer, data trees (XBLOCK / XXBLOCK), sub-node trees (SLBLOCK / SIBLOCK), and the two
  block encodings (NDB_CRYPT_PERMUTE, NDB_CRYPT_CYCLIC; internal blocks are never encoded).
- LTP layer: heap-on-node (HN, several blocks), HID / HNID resolution, BTH (any depth), the
  property context (PC) and the table context (TC: column descriptors, cell existence bitmap, row
  matrix in the heap or in a sub-node).
- A thin messaging layer on top: folders, messages, recipients, attachments and embedded messages.

It works on a bytes-like object (bytes, mmap, memoryview) and slices only what it reads; it never
keeps a memoryview of the buffer, so a caller's mmap can still be closed. Hostile input is the
normal case: every structural defect raises PstFormatError naming the NID / BID / offset. Loops are
bounded (B-tree levels must decrease, data and sub-node trees have fixed depths, BTH walks remember
the allocations they visited) and no read can allocate more than the file holds.

Values follow outlook._props: 0x1F -> str (UTF-16-LE), 0x1E -> str in the PST's code page, 0x40 ->
aware UTC datetime, 0x03 -> int, 0x0B -> bool, anything else -> the raw bytes.
"""
from __future__ import annotations

import codecs
import datetime as _dt
import mmap
import struct
from functools import cached_property
from typing import Dict, List, Optional, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]


class PstFormatError(ValueError):
    """The PST is damaged, forged or of a kind this reader does not support."""


# ---------------------------------------------------------------------------------------------
# [MS-PST] 5.1 mpbbCrypt: three 256-byte tables, R (permute encode), S, I (permute decode = R^-1).
# CryptCyclic (5.2) runs a byte through R, S and I with a key-dependent offset; S is its own
# inverse and I is the inverse of R, which makes it its own inverse.
# ---------------------------------------------------------------------------------------------

_CRYPT = bytes.fromhex(
    "41361362a8216ebbf416cc047f64e85d1ef2cb2a74c55e35d295479e962d9a884c7d843fdbac31b6485ff6c4d8398be7"
    "233b388ec8c1df25b120a546604e9cfbaad35651457c550007c92b9d859b09a08fadb30f63ab894bd7a7155a716642bf"
    "264a6b98faea7753b270052cfd593a867ece06eb827857c78d43afb41cd45bcde2e9274fc3087280cfb0eff5286dbe30"
    "4d3492d50e3c2232e5e4f99fc2d10a8112e1ee918376e397e6618a1779a4b7dc907a5c8c02a6ca69de501a1193b95287"
    "58fced1d37491b6ae0293399bd6cd994f340546ff0c673b8d63e6518441fdd6710f10c19ecae03a1147ba90bfff8a3c0"
    "a201f72ebc2468750dfeba2fb5d0da3d14530f56b3c87a9ceb65481716159f02cc547c83000d0c0ba262a876dbd9edc7"
    "c5a4dcac8574d6d0a79bae9a967166c36399b8dd73928e847da55ed15d93b1575150808952944f4e0a6bbc8d7f6e4746"
    "4140440111cb033ff7f4e1a98f3c3af9fbf0193082092ec99da08649ee6f4d6dc42d813425871b88aafc06a11238fd4c"
    "4272641337246a757743ffe6b44b365ce4d8353d45b92cecb7312b290768a30e697b189e2139be281a5b78f523ca2ab0"
    "af3efe048ce7e5983295d3f64ae8a6eae9f3d52f7020f21f0567ad5510cecde3273bdabad7c226d4911dd21c2233f8fa"
    "f15aefcf90b68bb5bdc0bf08971e6ce261e0c6c159abbb58de5fdf60797eb28a47f1b4e60b6a7248854e9eebe2f89453"
    "e0bba002e85a09abdbe3bac67cc310dd39059630f53760828cc9134a6b1df3fb8f2697ca911701c4322d6e3195ffd923"
    "d1005e79dc443b1a28c5615720903d83b943be67d2464276c06d5b7eb20f16293ca903540dda5ddff6b7c762cd8d06d3"
    "695c86d614f7a56675acb1e94521700c879f74a4224c6fbf1f56aa2eb3783350b0a392bccf191ca763cb1e4d3e4b1b9b"
    "4fe7f0eead3ab55904ea40552551e57a893868527bfc27aed7bdfa07f4cc8e5fef359c842b15d5773449b6120a7f7188"
    "fd9d18417d93d8582ccefe24afdeb836c8a180a69998a82f0e816573e4c2a28ad4e111d0088b2af2ed9a643fc16cf9ec")
_R, _S, _I = _CRYPT[:256], _CRYPT[256:512], _CRYPT[512:]

NDB_CRYPT_NONE, NDB_CRYPT_PERMUTE, NDB_CRYPT_CYCLIC = 0x00, 0x01, 0x02


def crypt_permute(data: bytes, encrypt: bool) -> bytes:
    """[MS-PST] 5.1 CryptPermute: a fixed byte substitution (R to encode, I to decode)."""
    return bytes(data).translate(_R if encrypt else _I)


def crypt_cyclic(data: bytes, key: int) -> bytes:
    """[MS-PST] 5.2 CryptCyclic, keyed by the low 32 bits of the block's BID; its own inverse."""
    # per byte n, with w = key + n: b -> R[b + lo] -> S[. + hi] - hi -> I[.] - lo (lo, hi: the bytes
    # of w). The lo steps depend only on n mod 256 and hi is constant over runs of 256 bytes, so
    # each step is a bytes.translate over a strided slice or a run, not a Python loop per byte.
    w = (key ^ (key >> 16)) & 0xFFFF
    out = bytearray(data)
    n = len(out)
    for k in range(min(n, 256)):
        out[k::256] = out[k::256].translate(_cyclic_tables()[0][(w + k) & 0xFF])
    start = 0
    while start < n:
        hi = ((w + start) & 0xFFFF) >> 8
        end = min(n, start + 256 - ((w + start) & 0xFF))
        out[start:end] = out[start:end].translate(_cyclic_tables()[1][hi])
        start = end
    for k in range(min(n, 256)):
        out[k::256] = out[k::256].translate(_cyclic_tables()[2][(w + k) & 0xFF])
    return bytes(out)


_CYCLIC: List[List[bytes]] = []


def _cyclic_tables() -> List[List[bytes]]:
    """[lo -> table of b -> R[b + lo]], [hi -> table of b -> I[S[b + hi] - hi]], [lo -> b - lo]."""
    if not _CYCLIC:
        _CYCLIC.append([bytes(_R[(b + lo) & 0xFF] for b in range(256)) for lo in range(256)])
        _CYCLIC.append([bytes(_I[(_S[(b + hi) & 0xFF] - hi) & 0xFF] for b in range(256)) for hi in range(256)])
        _CYCLIC.append([bytes((b - lo) & 0xFF for b in range(256)) for lo in range(256)])
    return _CYCLIC


# ---------------------------------------------------------------------------------------------
# property values
# ---------------------------------------------------------------------------------------------

# fixed-size property types ([MS-OXCDATA] 2.11.1) -> size in bytes
FIXED_SIZES = {0x0002: 2, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 1,
               0x0014: 8, 0x0040: 8, 0x0048: 16}
PT_OBJECT = 0x000D


def filetime(raw: bytes) -> Optional[_dt.datetime]:
    """A FILETIME (100 ns since 1601, UTC) -> aware datetime; None for 0 or out of range."""
    if not raw or len(raw) < 8:
        return None
    ft = struct.unpack_from("<Q", raw)[0]
    if not ft:
        return None
    try:
        return _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(microseconds=ft // 10)
    except OverflowError:
        return None


def prop_value(ptype: int, raw: bytes, codepage: str) -> object:
    """The python value of one property, by the conventions of outlook._props."""
    if ptype == 0x001F:
        return raw.decode("utf-16-le", "replace")
    if ptype == 0x001E:
        try:
            return raw.decode(codepage)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")
    if ptype == 0x0040:
        return filetime(raw)
    if ptype == 0x0003 and len(raw) >= 4:
        return struct.unpack_from("<i", raw)[0]
    if ptype == 0x000B and raw:
        return raw[0] != 0
    return raw


# ---------------------------------------------------------------------------------------------
# NDB layer
# ---------------------------------------------------------------------------------------------

NID_MESSAGE_STORE = 0x21
NID_ROOT_FOLDER = 0x122
NID_ATTACHMENT_TABLE = 0x671      # template NID of a message's attachment table sub-node
NID_RECIPIENT_TABLE = 0x692       # template NID of a message's recipient table sub-node
NID_TYPE_HID = 0x00
NID_TYPE_HIERARCHY_TABLE = 0x0D
NID_TYPE_CONTENTS_TABLE = 0x0E

PTYPE_BBT, PTYPE_NBT = 0x80, 0x81
_PAGE = 512
_MAX_BT_LEVELS = 16               # a B-tree deeper than this is not a real PST
_MAX_BTH_LEVELS = 16
_PAGE_CACHE = 4096                # parsed B-tree pages kept per file


class _Format:
    """Sizes and layouts of one of the two on-disk formats."""

    def __init__(self, unicode: bool) -> None:
        self.unicode = unicode
        self.id = "<Q" if unicode else "<I"                   # BID / BTKEY / NID-in-trees
        self.id_size = 8 if unicode else 4
        self.bref = "<QQ" if unicode else "<II"
        self.bref_size = 16 if unicode else 8
        self.entries_size = 488 if unicode else 496          # rgentries of a BTPAGE
        self.bt_entry = 24 if unicode else 12                # BTENTRY
        self.nbt_entry = 32 if unicode else 16               # NBTENTRY
        self.bbt_entry = 24 if unicode else 12               # BBTENTRY
        self.page_trailer = 16 if unicode else 12
        self.block_trailer = 16 if unicode else 12
        self.max_block = 8192 - self.block_trailer           # data bytes in one block
        self.sl_entry = 24 if unicode else 12                # SLENTRY
        self.si_entry = 16 if unicode else 8                 # SIENTRY
        self.sub_header = 8 if unicode else 4                # SLBLOCK / SIBLOCK header


def _u(fmt: str, buf: bytes, off: int, what: str) -> tuple:
    """struct.unpack_from with a PstFormatError instead of struct.error."""
    if off < 0 or off + struct.calcsize(fmt) > len(buf):
        raise PstFormatError("%s: %d bytes needed at offset %d of a %d-byte structure"
                             % (what, struct.calcsize(fmt), off, len(buf)))
    return struct.unpack_from(fmt, buf, off)


class PstFile:
    """One PST/OST file. Opening reads only the header; everything else is read on demand.

    codepage decodes PtypString8 values (the caller knows the store's code page; libpff's default
    is cp1252). max_data caps the bytes of one node's data (default: the file size, which a real
    node can never exceed), so a forged data tree cannot make the reader allocate gigabytes.
    """

    def __init__(self, buf: Buffer, codepage: str = "cp1252", max_data: Optional[int] = None) -> None:
        codecs.lookup(codepage)
        self._buf = buf
        self.size = len(buf)
        self.codepage = codepage
        self.max_data = self.size if max_data is None else max_data
        head = self._read(0, min(self.size, 564), "header")
        if len(head) < 512:
            raise PstFormatError("file of %d bytes is too short for a PST header (512 bytes at least)" % len(head))
        magic, _crc, client, self.version = struct.unpack_from("<4sI2sH", head, 0)
        if magic != b"!BDN":
            raise PstFormatError("not a PST/OST file: header magic %r, expected b'!BDN'" % magic)
        if client not in (b"SM", b"SO"):
            raise PstFormatError("unknown client magic %r in the PST header (expected SM or SO)" % client)
        if self.version in (14, 15):
            self.fmt = _Format(unicode=False)
            self.crypt_method = head[461]
            self.file_eof, = struct.unpack_from("<I", head, 168)
            self.nbt_root = struct.unpack_from("<II", head, 184)
            self.bbt_root = struct.unpack_from("<II", head, 192)
        elif self.version == 23:
            if len(head) < 564:
                raise PstFormatError("file of %d bytes is too short for a Unicode PST header (564 bytes)" % len(head))
            self.fmt = _Format(unicode=True)
            self.crypt_method = head[513]
            self.file_eof, = struct.unpack_from("<Q", head, 184)
            self.nbt_root = struct.unpack_from("<QQ", head, 216)
            self.bbt_root = struct.unpack_from("<QQ", head, 232)
        elif self.version == 36:
            raise PstFormatError("unsupported PST/OST version 36 (4 KiB-page OST format)")
        else:
            raise PstFormatError("unsupported PST version %d (header wVer)" % self.version)
        if self.crypt_method not in (NDB_CRYPT_NONE, NDB_CRYPT_PERMUTE, NDB_CRYPT_CYCLIC):
            raise PstFormatError("unsupported block encoding bCryptMethod 0x%02x" % self.crypt_method)
        self._pages: Dict[Tuple[int, int, int], Tuple[int, List[int], List[bytes]]] = {}

    # -- raw access --------------------------------------------------------------------------

    def _read(self, off: int, n: int, what: str) -> bytes:
        if off < 0 or n < 0 or off + n > self.size:
            raise PstFormatError("%s at offset %d (%d bytes) lies outside the file (%d bytes%s)"
                                 % (what, off, n, self.size,
                                    "; the header says %d: truncated file" % self.file_eof
                                    if getattr(self, "file_eof", 0) > self.size else ""))
        return bytes(self._buf[off:off + n])

    # -- B-trees -----------------------------------------------------------------------------

    def _page(self, bid: int, ib: int, ptype: int) -> Tuple[int, List[int], List[bytes]]:
        """A B-tree page -> (level, keys, entries)."""
        cached = self._pages.get((ib, ptype, bid))
        if cached is not None:
            return cached
        f = self.fmt
        tree = "node" if ptype == PTYPE_NBT else "block"
        page = self._read(ib, _PAGE, "%s B-tree page (BID 0x%x)" % (tree, bid))
        t = _PAGE - f.page_trailer
        p_type, p_repeat = page[t], page[t + 1]
        if p_type != ptype or p_repeat != ptype:
            raise PstFormatError("page at offset %d (BID 0x%x) has type 0x%02x/0x%02x, expected %s B-tree page 0x%02x"
                                 % (ib, bid, p_type, p_repeat, tree, ptype))
        tbid = struct.unpack_from(f.id, page, t + (8 if f.unicode else 4))[0]
        if tbid & ~1 != bid & ~1:
            raise PstFormatError("page at offset %d: trailer BID 0x%x, but it was reached as BID 0x%x" % (ib, tbid, bid))
        c_ent, c_max, cb_ent, level = page[f.entries_size:f.entries_size + 4]
        if level > _MAX_BT_LEVELS:
            raise PstFormatError("%s B-tree page at offset %d claims level %d" % (tree, ib, level))
        need = f.bt_entry if level else (f.nbt_entry if ptype == PTYPE_NBT else f.bbt_entry)
        if cb_ent < need or c_ent > c_max or c_ent * cb_ent > f.entries_size:
            raise PstFormatError("%s B-tree page at offset %d: %d entries of %d bytes (max %d) do not fit"
                                 % (tree, ib, c_ent, cb_ent, c_max))
        entries = [page[i * cb_ent:i * cb_ent + need] for i in range(c_ent)]
        keys = [struct.unpack_from(f.id, e, 0)[0] for e in entries]
        if ptype == PTYPE_BBT:
            keys = [k & ~1 for k in keys]
        if any(a > b for a, b in zip(keys, keys[1:])):
            raise PstFormatError("%s B-tree page at offset %d: keys out of order" % (tree, ib))
        if len(self._pages) >= _PAGE_CACHE:
            self._pages.clear()
        self._pages[(ib, ptype, bid)] = result = (level, keys, entries)
        return result

    def _bt_find(self, root: Tuple[int, int], key: int, ptype: int) -> Optional[bytes]:
        """The leaf entry with this key, or None. Each step must go down one level (this also
        ends any cycle of pages), and a page is never read twice in one search."""
        bid, ib = root
        expect: Optional[int] = None
        seen = set()
        while True:
            if ib in seen:
                raise PstFormatError("B-tree cycle: page at offset %d (BID 0x%x) reached twice" % (ib, bid))
            seen.add(ib)
            level, keys, entries = self._page(bid, ib, ptype)
            if expect is not None and level != expect:
                raise PstFormatError("B-tree page at offset %d (BID 0x%x) has level %d, expected %d"
                                     % (ib, bid, level, expect))
            if level == 0:
                for k, e in zip(keys, entries):
                    if k == key:
                        return e
                return None
            chosen = None
            for k, e in zip(keys, entries):
                if k > key:
                    break
                chosen = e
            if chosen is None:
                return None
            bid, ib = struct.unpack_from(self.fmt.bref, chosen, self.fmt.id_size)
            expect = level - 1

    def find_node(self, nid: int) -> Optional["Node"]:
        """The node with this NID in the node B-tree, or None when there is none."""
        e = self._bt_find(self.nbt_root, nid, PTYPE_NBT)
        if e is None:
            return None
        f = self.fmt
        bid_data, bid_sub = struct.unpack_from("<QQ" if f.unicode else "<II", e, f.id_size)
        return Node(self, nid, bid_data, bid_sub, "NID 0x%x" % nid)

    def node(self, nid: int) -> "Node":
        n = self.find_node(nid)
        if n is None:
            raise PstFormatError("NID 0x%x is not in the node B-tree" % nid)
        return n

    def block_ref(self, bid: int) -> Tuple[int, int]:
        """BID -> (file offset, size of the block's data)."""
        e = self._bt_find(self.bbt_root, bid & ~1, PTYPE_BBT)
        if e is None:
            raise PstFormatError("BID 0x%x is not in the block B-tree" % bid)
        f = self.fmt
        ib = struct.unpack_from(f.id, e, f.id_size)[0]
        cb = struct.unpack_from("<H", e, f.bref_size)[0]
        return ib, cb

    # -- blocks ------------------------------------------------------------------------------

    def block(self, bid: int) -> bytes:
        """The data of one block, decoded (internal blocks, BID bit 1, are never encoded)."""
        f = self.fmt
        ib, cb = self.block_ref(bid)
        if cb > f.max_block:
            raise PstFormatError("BID 0x%x: block size %d exceeds the %d-byte maximum" % (bid, cb, f.max_block))
        total = (cb + f.block_trailer + 63) & ~63
        raw = self._read(ib, total, "block BID 0x%x" % bid)
        t = total - f.block_trailer
        if f.unicode:
            t_cb, _sig, _crc, t_bid = struct.unpack_from("<HHIQ", raw, t)
        else:
            t_cb, _sig, t_bid, _crc = struct.unpack_from("<HHII", raw, t)
        if t_cb != cb or t_bid & ~1 != bid & ~1:
            raise PstFormatError("block at offset %d: trailer says BID 0x%x of %d bytes, the block B-tree BID 0x%x of %d"
                                 % (ib, t_bid, t_cb, bid, cb))
        data = raw[:cb]
        if bid & 2 or self.crypt_method == NDB_CRYPT_NONE:
            return data
        if self.crypt_method == NDB_CRYPT_PERMUTE:
            return crypt_permute(data, encrypt=False)
        return crypt_cyclic(data, bid & 0xFFFFFFFF)

    def data_blocks(self, bid: int, where: str) -> List[bytes]:
        """The blocks of a node's data: one data block, or the leaves of an XBLOCK / XXBLOCK tree."""
        if bid == 0:
            return []
        if not bid & 2:
            return [self.block(bid)]
        out: List[bytes] = []
        self._xblock(bid, 2, out, [0], where)
        return out

    def _xblock(self, bid: int, max_level: int, out: List[bytes], total: List[int], where: str) -> None:
        f = self.fmt
        b = self.block(bid)
        btype, level, c_ent, lcb = _u("<BBHI", b, 0, "%s: XBLOCK header (BID 0x%x)" % (where, bid))
        if btype != 0x01 or not 1 <= level <= max_level:
            raise PstFormatError("%s: BID 0x%x is not a data tree block of level <= %d (btype 0x%02x, level %d)"
                                 % (where, bid, max_level, btype, level))
        if 8 + c_ent * f.id_size > len(b):
            raise PstFormatError("%s: XBLOCK BID 0x%x lists %d BIDs, it has room for %d"
                                 % (where, bid, c_ent, (len(b) - 8) // f.id_size))
        if lcb > self.max_data:
            raise PstFormatError("%s: data tree BID 0x%x declares %d bytes, more than the limit of %d"
                                 % (where, bid, lcb, self.max_data))
        start = total[0]
        for i in range(c_ent):
            child = struct.unpack_from(f.id, b, 8 + i * f.id_size)[0]
            if level == 2:
                if not child & 2:
                    raise PstFormatError("%s: XXBLOCK BID 0x%x lists data block BID 0x%x (an XBLOCK was expected)"
                                         % (where, bid, child))
                self._xblock(child, 1, out, total, where)
            else:
                if child & 2:
                    raise PstFormatError("%s: XBLOCK BID 0x%x lists internal BID 0x%x (a data block was expected)"
                                         % (where, bid, child))
                data = self.block(child)
                total[0] += len(data)
                if total[0] > self.max_data:
                    raise PstFormatError("%s: data tree larger than the limit of %d bytes" % (where, self.max_data))
                if total[0] - start > lcb:
                    raise PstFormatError("%s: data tree BID 0x%x declares %d bytes, its blocks hold more"
                                         % (where, bid, lcb))
                out.append(data)
        if total[0] - start != lcb:
            raise PstFormatError("%s: data tree BID 0x%x declares %d bytes, its blocks hold %d"
                                 % (where, bid, lcb, total[0] - start))

    def subnode_table(self, bid: int, where: str) -> Dict[int, Tuple[int, int]]:
        """A sub-node tree (SLBLOCK, or SIBLOCK over SLBLOCKs) -> {nid: (bid_data, bid_sub)}."""
        out: Dict[int, Tuple[int, int]] = {}
        if bid:
            self._sub_block(bid, 1, out, where)
        return out

    def _sub_block(self, bid: int, max_level: int, out: Dict[int, Tuple[int, int]], where: str) -> None:
        f = self.fmt
        if not bid & 2:
            raise PstFormatError("%s: sub-node tree BID 0x%x is not an internal block" % (where, bid))
        b = self.block(bid)
        btype, level, c_ent = _u("<BBH", b, 0, "%s: sub-node block header (BID 0x%x)" % (where, bid))
        if btype != 0x02 or level > max_level:
            raise PstFormatError("%s: BID 0x%x is not a sub-node block of level <= %d (btype 0x%02x, level %d)"
                                 % (where, bid, max_level, btype, level))
        size = f.si_entry if level else f.sl_entry
        if f.sub_header + c_ent * size > len(b):
            raise PstFormatError("%s: sub-node block BID 0x%x lists %d entries, it has room for %d"
                                 % (where, bid, c_ent, (len(b) - f.sub_header) // size))
        for i in range(c_ent):
            off = f.sub_header + i * size
            if level:
                nid, child = struct.unpack_from("<QQ" if f.unicode else "<II", b, off)
                self._sub_block(child, 0, out, where)
            else:
                nid, bid_data, bid_sub = struct.unpack_from("<QQQ" if f.unicode else "<III", b, off)
                out.setdefault(nid & 0xFFFFFFFF, (bid_data, bid_sub))

    # -- messaging layer ---------------------------------------------------------------------

    def message(self, nid: int) -> "Message":
        return Message(self.node(nid))

    def folder(self, nid: int = NID_ROOT_FOLDER) -> "Folder":
        return Folder(self.node(nid))

    @cached_property
    def message_store(self) -> dict:
        """Properties of the message store (NID 0x21)."""
        return PropertyContext(self.node(NID_MESSAGE_STORE)).props


class Node:
    """A node: a top-level NBT entry or a sub-node, with its data tree and its sub-node tree."""

    def __init__(self, pst: PstFile, nid: int, bid_data: int, bid_sub: int, where: str) -> None:
        self.pst = pst
        self.nid = nid
        self.bid_data = bid_data
        self.bid_sub = bid_sub
        self.where = where

    @cached_property
    def blocks(self) -> List[bytes]:
        return self.pst.data_blocks(self.bid_data, self.where)

    def data(self) -> bytes:
        return b"".join(self.blocks)

    @cached_property
    def _subnodes(self) -> Dict[int, Tuple[int, int]]:
        return self.pst.subnode_table(self.bid_sub, self.where)

    def find_subnode(self, nid: int) -> Optional["Node"]:
        ref = self._subnodes.get(nid)
        if ref is None:
            return None
        return Node(self.pst, nid, ref[0], ref[1], "sub-node 0x%x of %s" % (nid, self.where))

    def subnode(self, nid: int) -> "Node":
        n = self.find_subnode(nid)
        if n is None:
            raise PstFormatError("%s has no sub-node 0x%x" % (self.where, nid))
        return n


# ---------------------------------------------------------------------------------------------
# LTP layer
# ---------------------------------------------------------------------------------------------

class Heap:
    """A heap-on-node: allocations addressed by HID (block index, allocation index)."""

    def __init__(self, node: Node, client_sig: int) -> None:
        self.node = node
        self.where = node.where
        blocks = node.blocks
        if not blocks:
            raise PstFormatError("%s: empty node where a heap-on-node was expected" % self.where)
        _ib, sig, csig, self.user_root = _u("<HBBI", blocks[0], 0, "%s: HNHDR" % self.where)
        if sig != 0xEC:
            raise PstFormatError("%s: heap signature 0x%02x, expected 0xEC" % (self.where, sig))
        if csig != client_sig:
            raise PstFormatError("%s: heap client signature 0x%02x, expected 0x%02x" % (self.where, csig, client_sig))
        self._maps: Dict[int, Tuple[int, ...]] = {}

    def _map(self, i: int) -> Tuple[int, ...]:
        """Allocation offsets of block i (HNHDR, HNPAGEHDR and HNBITMAPHDR all start with ibHnpm)."""
        m = self._maps.get(i)
        if m is not None:
            return m
        b = self.node.blocks[i]
        ib = _u("<H", b, 0, "%s: heap page %d header" % (self.where, i))[0]
        c_alloc, _c_free = _u("<HH", b, ib, "%s: heap page %d map" % (self.where, i))
        offs = _u("<%dH" % (c_alloc + 1), b, ib + 4, "%s: heap page %d map" % (self.where, i))
        if any(a > c for a, c in zip(offs, offs[1:])) or offs[-1] > ib:
            raise PstFormatError("%s: heap page %d has allocation offsets out of order" % (self.where, i))
        self._maps[i] = offs
        return offs

    def get(self, hid: int) -> bytes:
        """The bytes of one allocation."""
        if hid & 0x1F != NID_TYPE_HID:
            raise PstFormatError("%s: 0x%x is not a HID" % (self.where, hid))
        block, index = hid >> 16, (hid >> 5) & 0x7FF
        if block >= len(self.node.blocks):
            raise PstFormatError("%s: HID 0x%x points to heap page %d of %d" % (self.where, hid, block, len(self.node.blocks)))
        offs = self._map(block)
        if not 1 <= index < len(offs):
            raise PstFormatError("%s: HID 0x%x: allocation %d of %d" % (self.where, hid, index, len(offs) - 1))
        return self.node.blocks[block][offs[index - 1]:offs[index]]

    def hnid(self, hnid: int) -> bytes:
        """An HNID: a HID in this heap, or (low 5 bits not 0) the NID of a sub-node of the same node."""
        if hnid == 0:
            return b""
        if hnid & 0x1F == NID_TYPE_HID:
            return self.get(hnid)
        return self.node.subnode(hnid).data()

    def bth(self, hid: int, cb_key: int, cb_ent: Tuple[int, ...]) -> List[Tuple[bytes, bytes]]:
        """The (key, data) records of a BTH, in key order, walking its index levels."""
        hdr = self.get(hid)
        b_type, k, e, levels, root = _u("<BBBBI", hdr, 0, "%s: BTH header" % self.where)
        if b_type != 0xB5 or k != cb_key or e not in cb_ent:
            raise PstFormatError("%s: BTH header type 0x%02x, key %d / entry %d bytes (expected 0xB5, %d, %s)"
                                 % (self.where, b_type, k, e, cb_key, "/".join(map(str, cb_ent))))
        if levels > _MAX_BTH_LEVELS:
            raise PstFormatError("%s: BTH claims %d index levels" % (self.where, levels))
        out: List[Tuple[bytes, bytes]] = []
        stack = [(root, levels)]
        seen = set()
        while stack:
            h, lvl = stack.pop()
            if h == 0:
                continue
            if h in seen:
                raise PstFormatError("%s: BTH cycle: HID 0x%x reached twice" % (self.where, h))
            seen.add(h)
            recs = self.get(h)
            size = k + (e if lvl == 0 else 4)
            if len(recs) % size:
                raise PstFormatError("%s: BTH allocation HID 0x%x of %d bytes is not a whole number of %d-byte records"
                                     % (self.where, h, len(recs), size))
            rows = [recs[i:i + size] for i in range(0, len(recs), size)]
            if lvl == 0:
                out.extend((r[:k], r[k:]) for r in rows)
            else:
                stack.extend((struct.unpack_from("<I", r, k)[0], lvl - 1) for r in reversed(rows))
        return out


class PropertyContext:
    """A PC: {property id: (property type, raw value)} from a node's heap and its sub-nodes."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.heap = Heap(node, 0xBC)
        self.codepage = node.pst.codepage

    @cached_property
    def raw(self) -> Dict[int, Tuple[int, bytes]]:
        out: Dict[int, Tuple[int, bytes]] = {}
        for key, data in self.heap.bth(self.heap.user_root, 2, (6,)):
            pid = struct.unpack("<H", key)[0]
            ptype, hnid = struct.unpack("<HI", data)
            size = FIXED_SIZES.get(ptype)
            if size is not None and size <= 4:
                out.setdefault(pid, (ptype, data[2:2 + size]))
            else:
                out.setdefault(pid, (ptype, self.heap.hnid(hnid)))
        return out

    @cached_property
    def props(self) -> dict:
        return {pid: prop_value(t, raw, self.codepage) for pid, (t, raw) in self.raw.items()}


class TableContext:
    """A TC: its rows as {property id: (property type, raw value)}, in row-id order. A cell whose
    bit in the row's cell existence bitmap is clear is absent (libpff lists it with a zero value)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.heap = Heap(node, 0x7C)
        self.where = node.where

    @cached_property
    def raw_rows(self) -> List[Dict[int, Tuple[int, bytes]]]:
        heap, where = self.heap, self.where
        info = heap.get(heap.user_root)
        b_type, c_cols, *rgib = _u("<BB4H", info, 0, "%s: TCINFO" % where)
        hid_index, hnid_rows = _u("<II", info, 10, "%s: TCINFO" % where)
        if b_type != 0x7C:
            raise PstFormatError("%s: TCINFO type 0x%02x, expected 0x7C" % (where, b_type))
        ceb_start, row_size = rgib[2], rgib[3]
        if not rgib[0] <= rgib[1] <= ceb_start <= row_size or row_size - ceb_start < (c_cols + 7) // 8 or row_size == 0:
            raise PstFormatError("%s: TCINFO row layout %s does not fit %d columns" % (where, rgib, c_cols))
        cols = []
        for i in range(c_cols):
            tag, ib, cb, ibit = _u("<IHBB", info, 22 + 8 * i, "%s: column %d" % (where, i))
            if ib + cb > ceb_start or ibit >= c_cols:
                raise PstFormatError("%s: column %d (tag 0x%08x) lies outside the row" % (where, i, tag))
            cols.append((tag >> 16, tag & 0xFFFF, ib, cb, ibit))
        rows = self._matrix(hnid_rows, row_size)
        # the row index (TCROWID: dwRowID -> dwRowIndex, 4 bytes in Unicode files, 2 in ANSI
        # files) gives the rows in row-id order, the order libpff and Outlook list them in
        index = [int.from_bytes(d, "little") for _k, d in heap.bth(hid_index, 4, (2, 4))] if hid_index else []
        out = []
        for r in dict.fromkeys(index):
            if r >= len(rows):
                raise PstFormatError("%s: row index points to row %d of %d" % (where, r, len(rows)))
            row = rows[r]
            cells: Dict[int, Tuple[int, bytes]] = {}
            for pid, ptype, ib, cb, ibit in cols:
                if not row[ceb_start + ibit // 8] & (0x80 >> (ibit % 8)):
                    continue
                raw = row[ib:ib + cb]
                size = FIXED_SIZES.get(ptype)
                if size is not None and size == cb and size <= 8:
                    cells.setdefault(pid, (ptype, raw))
                elif cb == 4:
                    cells.setdefault(pid, (ptype, heap.hnid(struct.unpack("<I", raw)[0])))
                else:
                    raise PstFormatError("%s: column 0x%04x of type 0x%04x has %d bytes per cell" % (where, pid, ptype, cb))
            out.append(cells)
        return out

    def _matrix(self, hnid: int, row_size: int) -> List[bytes]:
        """The row matrix: in the heap, or in a sub-node whose blocks each hold whole rows."""
        if hnid == 0:
            return []
        if hnid & 0x1F == NID_TYPE_HID:
            chunks = [self.heap.get(hnid)]
        else:
            chunks = self.node.subnode(hnid).blocks
        rows: List[bytes] = []
        for c in chunks:
            rows.extend(c[i:i + row_size] for i in range(0, len(c) - row_size + 1, row_size))
        return rows

    def rows(self, codepage: str) -> List[dict]:
        return [{pid: prop_value(t, raw, codepage) for pid, (t, raw) in r.items()} for r in self.raw_rows]


# ---------------------------------------------------------------------------------------------
# messaging layer
# ---------------------------------------------------------------------------------------------

class _PropertyObject:
    """A node whose data is a property context (message, attachment, folder)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.nid = node.nid
        self._pc = PropertyContext(node)

    @property
    def raw_props(self) -> Dict[int, Tuple[int, bytes]]:
        return self._pc.raw

    @property
    def props(self) -> dict:
        return self._pc.props


class Message(_PropertyObject):
    """A message: a top-level message node or the sub-node holding an embedded message."""

    def _table(self, nid: int) -> List[dict]:
        sub = self.node.find_subnode(nid)
        return TableContext(sub).rows(self.node.pst.codepage) if sub is not None else []

    @cached_property
    def recipients(self) -> List[dict]:
        """One property dict per row of the recipient table (sub-node 0x692)."""
        return self._table(NID_RECIPIENT_TABLE)

    @cached_property
    def attachments(self) -> List["Attachment"]:
        """The attachments in attachment-table order (sub-node 0x671); each row names the
        sub-node holding the attachment's own property context (PR_LTP_ROW_ID, 0x67F2)."""
        out = []
        for row in self._table(NID_ATTACHMENT_TABLE):
            nid = row.get(0x67F2)
            if not isinstance(nid, int):
                raise PstFormatError("%s: attachment table row without a row id" % self.node.where)
            out.append(self.attachment(nid & 0xFFFFFFFF))
        return out

    def attachment(self, nid: int) -> "Attachment":
        return Attachment(self.node.subnode(nid))


class Attachment(_PropertyObject):
    """One attachment: its property context and, for PtypObject data, the sub-node it names."""

    @property
    def method(self) -> Optional[int]:
        m = self.props.get(0x3705)
        return m if isinstance(m, int) else None

    def _object_node(self) -> Node:
        t, raw = self.raw_props.get(0x3701, (None, b""))
        if t != PT_OBJECT:
            raise PstFormatError("%s: PR_ATTACH_DATA_OBJ is not a PtypObject (type %s)"
                                 % (self.node.where, "missing" if t is None else "0x%04x" % t))
        if len(raw) < 4:
            raise PstFormatError("%s: PtypObject value of %d bytes (NID and size expected)" % (self.node.where, len(raw)))
        return self.node.subnode(struct.unpack_from("<I", raw)[0])

    @property
    def data(self) -> Optional[bytes]:
        """PR_ATTACH_DATA_BIN, or for a PtypObject the data of the sub-node it names (an OLE
        storage, or an embedded message's property context: what libpff's read_buffer gives)."""
        t, raw = self.raw_props.get(0x3701, (None, b""))
        if t == PT_OBJECT:
            return self._object_node().data()
        return raw if t is not None else None

    def embedded_message(self) -> Message:
        """The attached message (method 5): the sub-node named by PR_ATTACH_DATA_OBJ holds its
        property context, and its own sub-nodes hold its recipient and attachment tables."""
        return Message(self._object_node())


class Folder(_PropertyObject):
    """A folder: its properties, and the NIDs of its sub-folders and messages (hierarchy and
    contents tables, top-level nodes whose NIDs share the folder's index)."""

    def _row_ids(self, nid_type: int) -> List[int]:
        table = self.node.pst.find_node((self.nid & ~0x1F) | nid_type)
        if table is None:
            return []
        ids = []
        for row in TableContext(table).raw_rows:
            t, raw = row.get(0x67F2, (None, b""))
            if len(raw) < 4:
                raise PstFormatError("%s: table row without a row id" % table.where)
            ids.append(struct.unpack_from("<I", raw)[0])
        return ids

    @cached_property
    def subfolder_nids(self) -> List[int]:
        return self._row_ids(NID_TYPE_HIERARCHY_TABLE)

    @cached_property
    def message_nids(self) -> List[int]:
        return self._row_ids(NID_TYPE_CONTENTS_TABLE)
