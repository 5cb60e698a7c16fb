"""TNEF (winmail.dat, application/ms-tnef) reader - our own parser of MS-OXTNEF.

Children, in stream order:
- every attachment, segment ``tnef:<index>`` (0-based, in the order of the attachments), name =
  the real long name (PR_ATTACH_LONG_FILENAME, else PR_DISPLAY_NAME, else the 8.3 attAttachTitle),
  data = PR_ATTACH_DATA_OBJ when present (minus the 16-byte interface id of an object), else
  attAttachData; the 16-byte interface id in front of an object is removed (meta.object_iid keeps
  it) so that an OLE storage is sniffable as OLE2. An attached message (IID_IMessage) is itself TNEF: the child is that nested TNEF
  stream and the pipeline opens it again (nested TNEF).
- ``tnef:<index>.alt``: the attAttachData of an attachment that also has PR_ATTACH_DATA_OBJ (a
  placeholder or rendering Outlook writes next to an embedded object); kept so no byte is lost.
- the bodies, segments ``tnef:body.txt`` (attBody or PR_BODY), ``tnef:body.html`` (PR_BODY_HTML)
  and ``tnef:body.rtf`` (PR_RTF_COMPRESSED, decompressed).
"""
from __future__ import annotations

import struct
from typing import Iterator, List, Optional, Union

from leaktriage.model.locator import segment
from leaktriage.containers.base import Child, Context, Problem

SIGNATURE = 0x223E9F78
IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")
IID_ISTORAGE = bytes.fromhex("0b00000000000000c000000000000046")

# attribute tags (low 16 bits of the attribute id)
ATT_BODY = 0x800C
ATT_SUBJECT = 0x8004
ATT_MESSAGE_CLASS = 0x8008
ATT_ATTACH_DATA = 0x800F
ATT_ATTACH_TITLE = 0x8010
ATT_ATTACH_RENDDATA = 0x9002
ATT_MAPI_PROPS = 0x9003
ATT_ATTACHMENT = 0x9005
ATT_OEM_CODEPAGE = 0x9007

_FIXED = {0x0001: 4, 0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4,
          0x000B: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_VARIABLE = (0x000D, 0x001E, 0x001F, 0x0102)


class _Bad(Exception):
    pass


def parse_mapi_props(buf: bytes) -> dict:
    """MS-OXTNEF property list -> {prop_id: (type, [values])}; named properties keyed by (guid, id/name)."""
    out: dict = {}
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(buf):
            raise _Bad("MAPI property list runs past its attribute")
        b = buf[pos:pos + n]
        pos += n
        return b

    count = struct.unpack("<I", take(4))[0]
    for _ in range(min(count, 100000)):
        ptype, pid = struct.unpack("<HH", take(4))
        key: object = pid
        if pid >= 0x8000:
            guid = take(16)
            kind = struct.unpack("<I", take(4))[0]
            if kind == 0:
                key = (guid.hex(), struct.unpack("<I", take(4))[0])
            else:
                nlen = struct.unpack("<I", take(4))[0]
                name = take(nlen)
                take(-nlen % 4)
                key = (guid.hex(), name.decode("utf-16-le", "replace").rstrip("\x00"))
        base = ptype & 0x0FFF
        multi = bool(ptype & 0x1000)
        values: List[bytes] = []
        if base in _VARIABLE:
            n = struct.unpack("<I", take(4))[0]
            for _i in range(min(n, 100000)):
                ln = struct.unpack("<I", take(4))[0]
                values.append(take(ln))
                take(-ln % 4)
        elif base in _FIXED:
            n = struct.unpack("<I", take(4))[0] if multi else 1
            for _i in range(min(n, 100000)):
                values.append(take(_FIXED[base]))
        else:
            raise _Bad("unknown MAPI property type 0x%04x" % ptype)
        out[key] = (base, values)
    return out


def _str_prop(props: dict, pid: int, codepage: str) -> Optional[str]:
    v = props.get(pid)
    if not v or not v[1]:
        return None
    t, vals = v
    raw = vals[0]
    if t == 0x001F:
        return raw.decode("utf-16-le", "replace").rstrip("\x00")
    if t == 0x001E:
        return _decode(raw, codepage).rstrip("\x00")
    return None


def _decode(raw: bytes, codepage: str) -> str:
    try:
        return raw.decode(codepage)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1")


def decompress_rtf(data: bytes) -> bytes:
    import compressed_rtf
    return compressed_rtf.decompress(data)


class _Att:
    def __init__(self) -> None:
        self.title: Optional[bytes] = None
        self.data: Optional[bytes] = None
        self.props: dict = {}


def read_tnef(data: bytes, ctx: Context) -> Iterator[Union[Child, Problem]]:
    try:
        yield from _read_tnef(bytes(data), ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("tnef.damaged", "unexpected error while reading the TNEF stream: %s: %s" % (type(e).__name__, e))


def _read_tnef(data: bytes, ctx: Context) -> Iterator[Union[Child, Problem]]:
    if len(data) < 6 or struct.unpack_from("<I", data, 0)[0] != SIGNATURE:
        yield Problem("tnef.damaged", "no TNEF signature", offset=0)
        return
    pos = 6
    codepage = "cp1252"
    atts: List[_Att] = []
    body_txt: Optional[bytes] = None
    msg_props: dict = {}
    bad_checksums = 0
    while pos < len(data):
        if pos + 9 > len(data):
            yield Problem("tnef.trailing_data", "%d bytes after the last complete TNEF attribute" % (len(data) - pos),
                          offset=pos, length=len(data) - pos)
            break
        level, attr_id, ln = struct.unpack_from("<BII", data, pos)
        if level not in (1, 2) or pos + 9 + ln + 2 > len(data):
            if level not in (1, 2) and atts or body_txt is not None or msg_props:
                yield Problem("tnef.trailing_data", "%d bytes after the last complete TNEF attribute" % (len(data) - pos),
                              offset=pos, length=len(data) - pos)
            else:
                yield Problem("tnef.damaged", "TNEF attribute at offset %d is invalid or runs past the end" % pos,
                              offset=pos, length=len(data) - pos)
            break
        value = data[pos + 9:pos + 9 + ln]
        checksum = struct.unpack_from("<H", data, pos + 9 + ln)[0]
        if checksum != (sum(value) & 0xFFFF):
            bad_checksums += 1
        tag = attr_id & 0xFFFF
        attr_pos = pos
        pos += 9 + ln + 2
        try:
            if level == 1:
                if tag == ATT_OEM_CODEPAGE and len(value) >= 4:
                    cp = struct.unpack_from("<I", value, 0)[0]
                    codepage = "cp%d" % cp if cp not in (65001,) else "utf-8"
                elif tag == ATT_BODY:
                    body_txt = value
                elif tag == ATT_MAPI_PROPS:
                    msg_props.update(parse_mapi_props(value))
            else:
                if tag == ATT_ATTACH_RENDDATA or not atts:
                    atts.append(_Att())
                cur = atts[-1]
                if tag == ATT_ATTACH_TITLE:
                    cur.title = value.split(b"\x00", 1)[0]
                elif tag == ATT_ATTACH_DATA:
                    cur.data = value
                elif tag == ATT_ATTACHMENT:
                    cur.props.update(parse_mapi_props(value))
        except (_Bad, struct.error) as e:
            yield Problem("tnef.damaged", "TNEF attribute 0x%08x at offset %d unreadable: %s" % (attr_id, attr_pos, e),
                          offset=attr_pos, length=ln)
    if bad_checksums:
        yield Problem("tnef.checksum_mismatch", "%d TNEF attribute checksum(s) do not match" % bad_checksums,
                      detail={"count": bad_checksums})
    lim = ctx.limits
    for i, att in enumerate(atts):
        long_name = _str_prop(att.props, 0x3707, codepage)
        display = _str_prop(att.props, 0x3001, codepage)
        fname = _str_prop(att.props, 0x3704, codepage)
        short = _decode(att.title, codepage) if att.title else None
        name = long_name or short or fname or display or "attachment-%d" % i
        meta: dict = {"index": i}
        for k, v in (("long_name", long_name), ("display_name", display), ("short_name", short), ("file_name", fname),
                     ("mime_tag", _str_prop(att.props, 0x370E, codepage)),
                     ("content_id", _str_prop(att.props, 0x3712, codepage))):
            if v:
                meta[k] = v
        method = att.props.get(0x3705)
        if method and method[1]:
            meta["attach_method"] = struct.unpack_from("<I", method[1][0])[0]
        payload = att.data
        obj = att.props.get(0x3701)
        meta["data_source"] = "attAttachData"
        if obj and obj[1]:
            raw = obj[1][0]
            if obj[0] == 0x000D and len(raw) >= 16:
                iid = raw[:16]
                payload = raw[16:]
                meta["object_iid"] = iid.hex()
                if iid == IID_IMESSAGE:
                    meta["embedded"] = "message (TNEF-encoded, opened as nested TNEF)"
                elif iid == IID_ISTORAGE:
                    meta["embedded"] = "OLE storage"
                else:
                    meta["embedded"] = "object " + iid.hex()
            else:
                payload = raw
            meta["data_source"] = "PR_ATTACH_DATA_OBJ"
        problems: list = []
        ch = Child(segment=segment("tnef", i), name=name, data=None, meta=meta, problems=problems)
        if payload is None:
            problems.append(Problem("tnef.attachment_without_data", "TNEF attachment %r has no data" % name))
        elif len(payload) > lim.max_member_size:
            problems.append(Problem("tnef.member_too_large", "TNEF attachment %r is %d bytes > max_member_size"
                                    % (name, len(payload)), detail={"limit": lim.max_member_size}))
        elif ctx.expanded_so_far + len(payload) > lim.max_total_expanded:
            problems.append(Problem("tnef.total_exceeded", "max_total_expanded reached at TNEF attachment %r" % name,
                                    detail={"limit": lim.max_total_expanded}))
        else:
            ch.data = payload
            ctx.expanded_so_far += len(payload)
            meta["size"] = len(payload)
        yield ch
        if obj and obj[1] and att.data is not None and att.data != payload:
            # attAttachData next to PR_ATTACH_DATA_OBJ: usually a placeholder or rendering; kept too
            alt_meta = {"index": i, "data_source": "attAttachData (alongside PR_ATTACH_DATA_OBJ)"}
            alt = Child(segment=segment("tnef", "%d.alt" % i), name=short or name, data=None, meta=alt_meta)
            if ctx.expanded_so_far + len(att.data) <= lim.max_total_expanded and len(att.data) <= lim.max_member_size:
                alt.data = att.data
                ctx.expanded_so_far += len(att.data)
                alt_meta["size"] = len(att.data)
            else:
                alt.problems.append(Problem("tnef.total_exceeded", "limit reached at TNEF attachment %r" % name))
            yield alt
    # bodies
    bodies = []
    if body_txt is not None:
        bodies.append(("body.txt", body_txt.rstrip(b"\x00"), {"source": "attBody", "charset": codepage}))
    else:
        v = msg_props.get(0x1000)
        if v and v[1]:
            if v[0] == 0x001F:
                bodies.append(("body.txt", v[1][0].decode("utf-16-le", "replace").rstrip("\x00").encode("utf-8"),
                               {"source": "PR_BODY", "charset": "utf-8"}))
            else:
                bodies.append(("body.txt", v[1][0].rstrip(b"\x00"), {"source": "PR_BODY", "charset": codepage}))
    v = msg_props.get(0x1013)
    if v and v[1]:
        html = v[1][0]
        if v[0] == 0x001F:
            html = html.decode("utf-16-le", "replace").rstrip("\x00").encode("utf-8")
        bodies.append(("body.html", html, {"source": "PR_BODY_HTML"}))
    v = msg_props.get(0x1009)
    rtf_problem = None
    if v and v[1]:
        try:
            rtf = decompress_rtf(v[1][0])
            bodies.append(("body.rtf", rtf, {"source": "PR_RTF_COMPRESSED (decompressed)"}))
        except Exception as e:  # noqa: BLE001
            rtf_problem = Problem("tnef.rtf_decompression_failed", "compressed RTF body: %s: %s" % (type(e).__name__, e))
            bodies.append(("body.rtf.lzfu", v[1][0], {"source": "PR_RTF_COMPRESSED (still compressed)"}))
    for name, content, meta in bodies:
        problems = [rtf_problem] if rtf_problem and name == "body.rtf.lzfu" else []
        ch = Child(segment=segment("tnef", name), name=name, data=None, meta=meta, problems=problems)
        if ctx.expanded_so_far + len(content) > lim.max_total_expanded:
            problems.append(Problem("tnef.total_exceeded", "max_total_expanded reached at TNEF %s" % name))
        else:
            ch.data = content
            ctx.expanded_so_far += len(content)
            meta["size"] = len(content)
        yield ch
