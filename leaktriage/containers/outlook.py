"""Outlook readers: .msg (extract-msg) and PST/OST (libpff-python, and pstndb), by reconstruction.

Outlook stores an e-mail as MAPI properties, not as MIME. leaktriage rebuilds one RFC 5322 / MIME
message per item so that the rest of the pipeline (MIME parser, hashes, duplicates) treats it like
any other message. The rebuilt bytes are leaktriage's, not an original: the child carries
``message={"source": "msg"|"pst", "reconstructed": True, ...}`` and docs/containers.md says how
it is built. The build is deterministic (same properties -> same bytes):

- header block: the transport headers (PR_TRANSPORT_MESSAGE_HEADERS) verbatim when present, minus
  their MIME-Version / Content-Type / Content-Transfer-Encoding fields (they describe the original
  MIME body, which no longer exists); otherwise From / Sender / To / Cc / Bcc / Subject / Date /
  Message-ID / In-Reply-To synthesised from the properties (RFC 2047 / formataddr encoding).
  An address without an SMTP address is written as an empty group ``Name:;``.
- body: multipart/mixed [ multipart/alternative [text/plain, text/html], application/rtf,
  attachments... ] with the levels that are not needed left out; every leaf is base64, text in
  UTF-8; an attached .msg, or a message attached inside a PST item, becomes a message/rfc822 part
  holding its own reconstruction (libpff does not expose a PST's embedded messages: pstndb.py
  reads them).
- boundaries are derived from a hash of the content, so they are stable and never collide.

Segments: a .msg gives one child ``msg:message``; a PST item gives ``pst:<folder path>/<NID>``
(the NID alone identifies the item; the folder path, without the nameless root folder, is there
for the reader). Attachments are MIME parts of the reconstruction (``...!msg:message#1.2``).
"""
from __future__ import annotations

import base64
import datetime as _dt
import email.utils
import hashlib
import mimetypes
import re
import struct
from email.header import Header
from typing import Callable, Iterator, List, Optional, Tuple, Union

from leaktriage.model.locator import segment
from leaktriage.containers import pstndb
from leaktriage.containers.base import Child, Context, Problem, iso_datetime
from leaktriage.containers.pstndb import PstFormatError

Item = Union[Child, Problem]

_MIME = mimetypes.MimeTypes(filenames=())   # built-in table only: deterministic on every machine

MAIL_CLASS_PREFIXES = ("IPM.NOTE", "IPM.POST", "IPM.SCHEDULE.MEETING", "REPORT.", "IPM.OUTLOOK.RECALL",
                       "IPM.RECALL", "IPM.SHARING", "IPM.DOCUMENT")


def is_mail_class(item_class: Optional[str]) -> bool:
    if not item_class:
        return True
    c = item_class.upper()
    return c == "IPM" or any(c.startswith(p) for p in MAIL_CLASS_PREFIXES)


# ---------------------------------------------------------------------------------------------
# the MIME builder (shared by .msg and PST)
# ---------------------------------------------------------------------------------------------

class Facts:
    """Properties of one Outlook item, normalised."""

    def __init__(self) -> None:
        self.item_class: Optional[str] = None
        self.transport_headers: Optional[str] = None
        self.subject: Optional[str] = None
        self.sender: Optional[Tuple[str, str]] = None             # (name, address)
        self.sent_representing: Optional[Tuple[str, str]] = None
        self.to: List[Tuple[str, str]] = []
        self.cc: List[Tuple[str, str]] = []
        self.bcc: List[Tuple[str, str]] = []
        self.display_to: Optional[str] = None
        self.display_cc: Optional[str] = None
        self.client_submit_time: Optional[_dt.datetime] = None
        self.delivery_time: Optional[_dt.datetime] = None
        self.creation_time: Optional[_dt.datetime] = None
        self.message_id: Optional[str] = None
        self.in_reply_to: Optional[str] = None
        self.references: Optional[str] = None
        self.body_text: Optional[str] = None
        self.body_html: Optional[bytes] = None
        self.body_rtf: Optional[bytes] = None
        self.attachments: List[dict] = []   # name, data, mime, content_id, message (bytes rfc822) / raw_embedded
        self.problems: List[Problem] = []


def _clean(s: Optional[str]) -> Optional[str]:
    if s is None:
        return None
    s = s.replace("\x00", "").strip()
    return s or None


_CTL = re.compile(r"[\r\n]+")


def _hdr_text(value: str) -> str:
    value = _CTL.sub(" ", value)
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _addr(name: Optional[str], addr: Optional[str]) -> Optional[str]:
    name = _clean(name)
    addr = _clean(addr)
    if addr and "@" in addr:
        if name and name != addr:
            return email.utils.formataddr((_CTL.sub(" ", name), addr), charset="utf-8")
        return addr
    label = name or addr
    if not label:
        return None
    # no SMTP address: keep the display name as an empty group (valid RFC 5322, nothing invented)
    label = _CTL.sub(" ", label)
    if label.isascii():
        return '"%s":;' % label.replace("\\", "\\\\").replace('"', '\\"')
    return "%s:;" % Header(label, "utf-8").encode()


_MIME_HEADERS = re.compile(r"^(mime-version|content-type|content-transfer-encoding)\s*:", re.I)


def _strip_mime_headers(raw: str) -> Tuple[str, List[str]]:
    """Transport headers -> header block: drop the MIME fields of the original body, an Exchange
    'Microsoft Mail Internet Headers Version 2.0' banner line, and anything after the first blank
    line (never part of a header block; it would end ours early)."""
    out: List[str] = []
    dropped: List[str] = []
    skipping = False
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].startswith("Microsoft Mail Internet Headers Version"):
        dropped.append(lines.pop(0).strip())
    for n, line in enumerate(lines):
        if not line.strip():
            if any(x.strip() for x in lines[n:]):
                dropped.append("(text after the blank line ending the transport headers)")
            break
        if line[:1] in (" ", "\t"):
            if skipping:
                continue
            if out:
                out.append(line)
            continue
        skipping = bool(_MIME_HEADERS.match(line))
        if skipping:
            dropped.append(line.split(":", 1)[0])
            continue
        out.append(line)
    return "\r\n".join(out), dropped


def _b64(data: bytes) -> bytes:
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def _param(name: str, value: str) -> str:
    if value.isascii() and '"' not in value and "\\" not in value and not any(ord(c) < 0x20 for c in value):
        return '%s="%s"' % (name, value)
    return "%s*=%s" % (name, email.utils.encode_rfc2231(value, "utf-8"))


def _leaf(ctype: str, data: bytes, extra_headers: List[str]) -> bytes:
    head = ["Content-Type: " + ctype, "Content-Transfer-Encoding: base64"] + extra_headers
    return ("\r\n".join(head)).encode("utf-8") + b"\r\n\r\n" + _b64(data) + b"\r\n"


def _multipart(subtype: str, parts: List[bytes]) -> bytes:
    h = hashlib.sha256(b"".join(parts)).hexdigest()[:24]
    boundary = "=_lt_%s_%s" % (subtype, h)
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return ('Content-Type: multipart/%s; boundary="%s"' % (subtype, boundary)).encode() + b"\r\n\r\n" + body


def _guess_type(name: Optional[str], declared: Optional[str]) -> str:
    declared = _clean(declared)
    if declared and re.fullmatch(r"[\w.+-]+/[\w.+-]+", declared):
        return declared.lower()
    if name:
        t, _enc = _MIME.guess_type(name, strict=False)
        if t:
            return t
    return "application/octet-stream"


def build_mime(f: Facts) -> Tuple[bytes, dict]:
    """Reconstruct an RFC 5322 message from the facts. Returns (bytes, facts for the record)."""
    info: dict = {}
    if f.transport_headers and f.transport_headers.strip():
        head, dropped = _strip_mime_headers(f.transport_headers)
        info["header_source"] = "transport headers"
        if dropped:
            info["dropped_original_headers"] = dropped
        header_lines = [head] if head else []
    else:
        info["header_source"] = "synthesised from properties"
        header_lines = []
        frm = f.sent_representing or f.sender
        if frm:
            a = _addr(*frm)
            if a:
                header_lines.append("From: " + a)
            if f.sender and f.sent_representing and f.sender != f.sent_representing:
                s = _addr(*f.sender)
                if s:
                    header_lines.append("Sender: " + s)
        for label, lst, disp in (("To", f.to, f.display_to), ("Cc", f.cc, f.display_cc), ("Bcc", f.bcc, None)):
            vals = [a for a in (_addr(n, e) for n, e in lst) if a]
            if not vals and disp:
                vals = [a for a in (_addr(x.strip(), None) for x in disp.split(";")) if a]
            if vals:
                header_lines.append("%s: %s" % (label, ",\r\n ".join(vals)))
        if f.subject is not None:
            header_lines.append("Subject: " + _hdr_text(f.subject))
        date = f.client_submit_time or f.delivery_time or f.creation_time
        if date is not None:
            if date.tzinfo is None:
                date = date.replace(tzinfo=_dt.timezone.utc)
            header_lines.append("Date: " + email.utils.format_datetime(date.astimezone(_dt.timezone.utc)))
        if f.message_id:
            header_lines.append("Message-ID: " + _CTL.sub(" ", f.message_id))
        if f.in_reply_to:
            header_lines.append("In-Reply-To: " + _CTL.sub(" ", f.in_reply_to))
        if f.references:
            header_lines.append("References: " + _CTL.sub(" ", f.references))
    # bodies
    alts: List[bytes] = []
    if f.body_text is not None:
        alts.append(_leaf('text/plain; charset="utf-8"', f.body_text.encode("utf-8", "surrogatepass"), []))
    if f.body_html is not None:
        cs = _html_charset(f.body_html)
        alts.append(_leaf('text/html; charset="%s"' % cs if cs else "text/html", f.body_html, []))
    parts: List[bytes] = []
    if len(alts) > 1:
        parts.append(_multipart("alternative", alts))
    else:
        parts.extend(alts)
    if f.body_rtf is not None:
        parts.append(_leaf("application/rtf", f.body_rtf,
                           ["Content-Disposition: inline", "Content-Description: RTF body (PR_RTF_COMPRESSED, decompressed)"]))
    for att in f.attachments:
        name = att.get("name")
        extra: List[str] = []
        if att.get("message") is not None:
            hdrs = ["Content-Type: message/rfc822"]
            if name:
                hdrs.append("Content-Disposition: attachment; " + _param("filename", name))
            parts.append(("\r\n".join(hdrs)).encode("utf-8") + b"\r\n\r\n" + att["message"])
            continue
        ctype = att.get("mime") or _guess_type(name, None)
        if name:
            ctype += "; " + _param("name", name)
        disp = "inline" if att.get("content_id") and att.get("inline") else "attachment"
        extra.append("Content-Disposition: " + disp + ("; " + _param("filename", name) if name else ""))
        if att.get("content_id"):
            cid = _clean(att["content_id"]) or ""
            extra.append("Content-ID: <%s>" % cid.strip("<>"))
        if att.get("description"):
            extra.append("Content-Description: " + _hdr_text(att["description"]))
        parts.append(_leaf(ctype, att.get("data") or b"", extra))
    if not parts:
        body = _leaf('text/plain; charset="utf-8"', b"", [])
    elif len(parts) == 1:
        body = parts[0]
    else:
        body = _multipart("mixed", parts)
    head = "\r\n".join(header_lines)
    out = (head + "\r\n" if head else "").encode("utf-8", "surrogateescape") + b"MIME-Version: 1.0\r\n" + body
    return out, info


def _html_charset(html: bytes) -> Optional[str]:
    m = re.search(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", html[:4096], re.I)
    if m:
        return m.group(1).decode("ascii").lower()
    return None


def _iso(d: Optional[_dt.datetime]) -> Optional[str]:
    try:
        return iso_datetime(d) if d is not None else None
    except (ValueError, OverflowError, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# .msg (extract-msg)
# ---------------------------------------------------------------------------------------------

def _open_msg(data: bytes):
    import extract_msg
    from extract_msg.enums import ErrorBehavior
    return extract_msg.openMsg(data, errorBehavior=ErrorBehavior.SUPPRESS_ALL, delayAttachments=False)


def _msg_str(m, pid: str) -> Optional[str]:
    try:
        return _clean(m.getStringStream("__substg1.0_" + pid))
    except Exception:  # noqa: BLE001
        return None


def _msg_time(m, tag: str) -> Optional[_dt.datetime]:
    try:
        p = m.props.get(tag)
        v = getattr(p, "value", None)
        return v if isinstance(v, _dt.datetime) else None
    except Exception:  # noqa: BLE001
        return None


def msg_facts(m, depth: int = 0) -> Facts:
    f = Facts()
    f.item_class = _clean(getattr(m, "classType", None)) or _msg_str(m, "001A")
    f.transport_headers = _msg_str(m, "007D")
    f.subject = _msg_str(m, "0037")
    if f.subject is None:
        try:
            f.subject = _clean(m.subject)
        except Exception:  # noqa: BLE001
            pass
    sname, saddr = _msg_str(m, "0C1A"), _msg_str(m, "5D01") or _msg_str(m, "0C1F")
    if sname or saddr:
        f.sender = (sname or "", saddr or "")
    rname, raddr = _msg_str(m, "0042"), _msg_str(m, "5D02") or _msg_str(m, "0065")
    if rname or raddr:
        f.sent_representing = (rname or "", raddr or "")
    f.display_to = _msg_str(m, "0E04")
    f.display_cc = _msg_str(m, "0E03")
    try:
        for r in m.recipients:
            name = _clean(r.name)
            addr = _clean(r.getStringStream("__substg1.0_39FE")) or _clean(r.email)
            t = int(getattr(r.type, "value", r.type) or 1)
            (f.cc if t == 2 else f.bcc if t == 3 else f.to).append((name or "", addr or ""))
    except Exception as e:  # noqa: BLE001
        f.problems.append(Problem("msg.property_unreadable", "recipient table unreadable: %s: %s" % (type(e).__name__, e)))
    f.client_submit_time = _msg_time(m, "00390040")
    f.delivery_time = _msg_time(m, "0E060040")
    f.creation_time = _msg_time(m, "30070040")
    f.message_id = _msg_str(m, "1035")
    f.in_reply_to = _msg_str(m, "1042")
    f.references = _msg_str(m, "1039")
    f.body_text = _msg_str(m, "1000")
    try:
        html = m.getStream("__substg1.0_10130102")
        if html is None:
            hs = _msg_str(m, "1013")
            html = hs.encode("utf-8") if hs else None
        f.body_html = html.rstrip(b"\x00") if html else None
    except Exception as e:  # noqa: BLE001
        f.problems.append(Problem("msg.property_unreadable", "HTML body unreadable: %s" % e))
    try:
        comp = m.compressedRtf
        if comp:
            import compressed_rtf
            f.body_rtf = compressed_rtf.decompress(comp)
    except Exception as e:  # noqa: BLE001
        f.problems.append(Problem("msg.property_unreadable", "compressed RTF body unreadable: %s: %s" % (type(e).__name__, e)))
    try:
        atts = list(m.attachments)
    except Exception as e:  # noqa: BLE001
        f.problems.append(Problem("msg.attachment_unreadable", "attachment table unreadable: %s: %s" % (type(e).__name__, e)))
        atts = []
    for i, a in enumerate(atts):
        entry: dict = {}
        try:
            name = (_clean(getattr(a, "longFilename", None)) or _clean(getattr(a, "shortFilename", None))
                    or _clean(getattr(a, "displayName", None)))
            entry["name"] = name
            entry["content_id"] = _clean(getattr(a, "contentId", None))
            entry["inline"] = bool(getattr(a, "hidden", False))
            entry["mime"] = _guess_type(name, getattr(a, "mimetype", None))
            payload = a.data
            if payload is not None and not isinstance(payload, (bytes, bytearray)) and hasattr(payload, "attachments"):
                if depth >= 16:
                    raise ValueError("embedded messages nested deeper than 16 levels")
                sub = msg_facts(payload, depth + 1)
                entry["message"], _ = build_mime(sub)
                f.problems.extend(sub.problems)
            elif isinstance(payload, (bytes, bytearray)):
                entry["data"] = bytes(payload)
            else:
                raise ValueError("attachment type %s has no data" % getattr(a, "type", "?"))
        except Exception as e:  # noqa: BLE001
            entry.setdefault("name", "attachment-%d" % i)
            entry["data"] = b""
            entry["mime"] = "application/octet-stream"
            entry["description"] = "attachment %d could not be read by leaktriage" % i
            f.problems.append(Problem("msg.attachment_unreadable", "attachment %d (%r) unreadable: %s: %s"
                                      % (i, entry.get("name"), type(e).__name__, e)))
        f.attachments.append(entry)
    return f


def _message_facts(f: Facts, source: str, info: dict) -> dict:
    out = {"source": source, "reconstructed": True, "item_class": f.item_class,
           "client_submit_time": _iso(f.client_submit_time), "delivery_time": _iso(f.delivery_time),
           "creation_time": _iso(f.creation_time), "transport_headers": bool(f.transport_headers),
           "attachments": len(f.attachments)}
    out.update(info)
    return out


def read_msg(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_msg(bytes(data), ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("msg.unreadable", "unexpected error while reading the .msg: %s: %s" % (type(e).__name__, e))


def _read_msg(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        m = _open_msg(data)
    except Exception as e:  # noqa: BLE001
        yield Problem("msg.unreadable", "not a readable Outlook .msg: %s: %s" % (type(e).__name__, e), offset=0)
        return
    try:
        f = msg_facts(m)
        raw, info = build_mime(f)
    finally:
        try:
            m.close()
        except Exception:  # noqa: BLE001
            pass
    yield from _item_child(f, raw, info, "msg", segment("msg", "message"), ctx, {})


def _item_child(f: Facts, raw: bytes, info: dict, source: str, seg: str, ctx: Context, extra: dict) -> Iterator[Item]:
    problems = list(f.problems)
    mail = is_mail_class(f.item_class)
    if not f.transport_headers and mail:
        problems.append(Problem("msg.no_transport_headers", "no transport headers: header block synthesised from properties"))
    if not mail:
        code = "msg.not_mail" if source == "msg" else "pst.not_mail"
        problems.append(Problem(code, "Outlook item of class %s is not an e-mail" % f.item_class,
                                detail={"item_class": f.item_class}))
    facts = _message_facts(f, source, info)
    facts.update(extra)
    meta = {"size": len(raw), "item_class": f.item_class}
    meta.update({k: v for k, v in extra.items() if k in ("folder", "pst_nid")})
    yield Child(segment=seg, name=f.subject or "(no subject)", data=raw, meta=meta,
                kind="message" if mail else "item", message=facts, problems=problems)


# ---------------------------------------------------------------------------------------------
# PST / OST (pypff for the folder tree and its items, pstndb for embedded messages)
# ---------------------------------------------------------------------------------------------

MAX_EMBEDDED_DEPTH = 16      # attached messages inside attached messages (as for .msg)
MAX_EMBEDDED_PER_ITEM = 1000  # a forged PST can make many attachments name one sub-node


def _record_props(rs, codepage: str) -> dict:
    """One pypff record set -> {prop id: python value}, by pstndb's value conventions."""
    out: dict = {}
    try:
        for e in rs.entries:
            try:
                pid, vt, raw = e.entry_type, e.value_type, e.data
            except Exception:  # noqa: BLE001
                continue
            out.setdefault(pid, pstndb.prop_value(vt, raw or b"", codepage))
    except Exception:  # noqa: BLE001
        pass
    return out


def _props(item, codepage: str) -> dict:
    """First record set of a pypff item -> {prop id: python value}."""
    try:
        if item.number_of_record_sets < 1:
            return {}
        return _record_props(item.get_record_set(0), codepage)
    except Exception:  # noqa: BLE001
        return {}


def _pst_subject(s: Optional[str]) -> Optional[str]:
    s = s if isinstance(s, str) else None
    if s and s[0] == "\x01" and len(s) >= 2:
        s = s[2:]
    return _clean(s)


def _s(v) -> Optional[str]:
    return _clean(v) if isinstance(v, str) else None


def _facts_from_props(p: dict) -> Facts:
    f = Facts()
    f.item_class = _s(p.get(0x001A))
    f.subject = _pst_subject(p.get(0x0037))
    f.transport_headers = _s(p.get(0x007D))
    if p.get(0x0C1A) or p.get(0x0C1F) or p.get(0x5D01):
        f.sender = (_s(p.get(0x0C1A)) or "", _s(p.get(0x5D01)) or _s(p.get(0x0C1F)) or "")
    if p.get(0x0042) or p.get(0x0065) or p.get(0x5D02):
        f.sent_representing = (_s(p.get(0x0042)) or "", _s(p.get(0x5D02)) or _s(p.get(0x0065)) or "")
    f.display_to = _s(p.get(0x0E04))
    f.display_cc = _s(p.get(0x0E03))
    f.client_submit_time = p.get(0x0039) if isinstance(p.get(0x0039), _dt.datetime) else None
    f.delivery_time = p.get(0x0E06) if isinstance(p.get(0x0E06), _dt.datetime) else None
    f.creation_time = p.get(0x3007) if isinstance(p.get(0x3007), _dt.datetime) else None
    f.message_id = _s(p.get(0x1035))
    f.in_reply_to = _s(p.get(0x1042))
    f.references = _s(p.get(0x1039))
    body = p.get(0x1000)
    f.body_text = _clean(body) if isinstance(body, str) else None
    html = p.get(0x1013)
    if isinstance(html, str):
        html = html.encode("utf-8")
    f.body_html = html.rstrip(b"\x00") if html else None
    rtf = p.get(0x1009)
    if isinstance(rtf, bytes) and rtf:
        try:
            import compressed_rtf
            f.body_rtf = compressed_rtf.decompress(rtf)
        except Exception as e:  # noqa: BLE001
            f.problems.append(Problem("msg.property_unreadable", "compressed RTF body unreadable: %s: %s" % (type(e).__name__, e)))
    return f


def parse_pc_heap(buf: bytes, codepage: str) -> Tuple[dict, int]:
    """Properties of a raw MS-PST property context (heap-on-node, single block), as libpff hands
    out for an embedded message. Returns ({prop id: value}, number of values kept in sub-nodes)."""
    ib_hnpm, sig, csig, hid_root = struct.unpack_from("<HBBI", buf, 0)
    if sig != 0xEC or csig != 0xBC:
        raise ValueError("not a property context heap (signature %02x/%02x)" % (sig, csig))
    c_alloc = struct.unpack_from("<H", buf, ib_hnpm)[0]
    offs = struct.unpack_from("<%dH" % (c_alloc + 1), buf, ib_hnpm + 4)

    def alloc(hid: int) -> bytes:
        if hid & 0x1F or hid >> 16:
            raise ValueError("HID 0x%x not in the first heap block" % hid)
        idx = (hid >> 5) & 0x7FF
        if not 1 <= idx <= c_alloc:
            raise ValueError("HID 0x%x out of range" % hid)
        return buf[offs[idx - 1]:offs[idx]]

    b_type, cb_key, cb_ent, levels, hid_recs = struct.unpack_from("<BBBBI", alloc(hid_root), 0)
    if b_type != 0xB5 or cb_key != 2 or cb_ent != 6 or levels != 0:
        raise ValueError("unsupported BTH layout")
    recs = alloc(hid_recs) if hid_recs else b""
    out: dict = {}
    in_subnodes = 0
    for i in range(0, len(recs) - 7, 8):
        pid, ptype, val = struct.unpack_from("<HHI", recs, i)
        if ptype in (0x0002, 0x0003, 0x000A):
            out[pid] = struct.unpack("<i", struct.pack("<I", val))[0] if ptype == 0x0003 else val
            continue
        if ptype == 0x000B:
            out[pid] = bool(val & 0xFF)
            continue
        if val & 0x1F:            # an NID: the value lives in a sub-node libpff does not expose here
            in_subnodes += 1
            continue
        if val == 0:
            continue
        try:
            raw = alloc(val)
        except ValueError:
            in_subnodes += 1
            continue
        if ptype == 0x001F:
            out[pid] = raw.decode("utf-16-le", "replace")
        elif ptype == 0x001E:
            out[pid] = raw.decode(codepage, "replace")
        elif ptype == 0x0040:
            out[pid] = pstndb.filetime(raw)
        else:
            out[pid] = raw
    return out, in_subnodes


def _pst_facts(p: dict, recipients: List[dict]) -> Facts:
    """Facts of a PST message from its properties and recipient rows, whoever read them (libpff
    for the items of the folder tree, pstndb for embedded messages)."""
    f = _facts_from_props(p)
    for rp in recipients:
        name = _s(rp.get(0x3001)) or ""
        addr = _s(rp.get(0x39FE)) or _s(rp.get(0x3003)) or ""
        t = rp.get(0x0C15, 1)
        (f.cc if t == 2 else f.bcc if t == 3 else f.to).append((name, addr))
    return f


def _attachment_entry(ap: dict) -> dict:
    name = _s(ap.get(0x3707)) or _s(ap.get(0x3704)) or _s(ap.get(0x3001))
    cid = _s(ap.get(0x3712))
    return {"name": name, "content_id": cid, "inline": bool(cid), "mime": _guess_type(name, _s(ap.get(0x370E)))}


def _unreadable_attachment(entry: dict, i: int, e: Exception) -> Problem:
    """Turn the entry into a placeholder part (keeping a name already read)."""
    entry.pop("message", None)
    entry["name"] = entry.get("name") or "attachment-%d" % i
    entry.update(data=b"", mime="application/octet-stream", description="attachment %d could not be read by leaktriage" % i)
    return Problem("msg.attachment_unreadable", "attachment %d unreadable: %s: %s" % (i, type(e).__name__, e))


def _embedded(entry: dict, i: int, open_message: Callable[[], pstndb.Message], raw_block: Callable[[], bytes],
              codepage: str, depth: int, budget: List[int], f: Facts) -> None:
    """Fill the entry of an attached message (method 5): read completely through pstndb, or, when
    that fails, rebuilt from its own property block like libpff hands it out."""
    try:
        if depth >= MAX_EMBEDDED_DEPTH:
            raise PstFormatError("embedded messages nested deeper than %d levels" % MAX_EMBEDDED_DEPTH)
        budget[0] += 1
        if budget[0] > MAX_EMBEDDED_PER_ITEM:
            raise PstFormatError("more than %d embedded messages in one item" % MAX_EMBEDDED_PER_ITEM)
        sub = _ndb_facts(open_message(), codepage, depth + 1, budget)
    except PstFormatError as e:
        f.problems.append(Problem("pst.embedded_message_unreadable",
                                  "attachment %d is an embedded message leaktriage's PST reader could not read: %s" % (i, e)))
        try:
            raw = raw_block()
        except PstFormatError:
            raw = b""
        _embedded_fallback(entry, i, raw, codepage, f)
        return
    entry["message"], _info = build_mime(sub)
    f.problems.extend(sub.problems)


def _embedded_fallback(entry: dict, i: int, raw: bytes, codepage: str, f: Facts) -> None:
    """The libpff-only rebuild: the embedded message's own property block, parsed by parse_pc_heap."""
    try:
        props, missing = parse_pc_heap(raw, codepage)
        sub = _facts_from_props(props)
        entry["message"], _info = build_mime(sub)
        f.problems.extend(sub.problems)
        f.problems.append(Problem("pst.embedded_message_partial",
                                  "attachment %d is an embedded message rebuilt from its own property block only; "
                                  "%d properties kept in sub-nodes, its recipient table and its attachments are missing"
                                  % (i, missing), detail={"missing_values": missing}))
    except (ValueError, struct.error) as e:
        entry["mime"] = "application/vnd.ms-outlook-pst-embedded"
        entry["description"] = "embedded message as raw PST property block (not rebuilt: %s)" % e
        entry["name"] = entry.get("name") or "embedded-message-%d.bin" % i
        entry["data"] = raw
        f.problems.append(Problem("pst.embedded_message_raw",
                                  "attachment %d is an embedded message; kept as its raw property block: %s" % (i, e)))


def _ndb_facts(m: pstndb.Message, codepage: str, depth: int, budget: List[int]) -> Facts:
    """Facts of a message read by pstndb (an embedded message), its attachments included."""
    f = _pst_facts(m.props, m.recipients)
    for i, a in enumerate(m.attachments):
        entry: dict = {}
        try:
            entry.update(_attachment_entry(a.props))
            if a.method == 5:
                _embedded(entry, i, a.embedded_message, lambda a=a: a.data or b"", codepage, depth, budget, f)
            else:
                entry["data"] = a.data or b""
        except PstFormatError as e:
            f.problems.append(_unreadable_attachment(entry, i, e))
        f.attachments.append(entry)
    return f


def _ndb_attachment(ndb: Union[pstndb.PstFile, PstFormatError], msg_nid: int, att_nid: int) -> pstndb.Attachment:
    if isinstance(ndb, PstFormatError):
        raise PstFormatError("the PST's own structure is unreadable: %s" % ndb)
    return ndb.message(msg_nid).attachment(att_nid)


def pst_facts(m, codepage: str, ndb: Union[pstndb.PstFile, PstFormatError]) -> Facts:
    """Facts of a libpff item; ndb (opened once per PST, or the error that prevented it) reads
    its embedded messages, which libpff does not expose."""
    p = _props(m, codepage)
    recipients: List[dict] = []
    problems: List[Problem] = []
    try:
        rc = m.recipients
        for i in range(rc.number_of_record_sets if rc is not None else 0):
            recipients.append(_record_props(rc.get_record_set(i), codepage))
    except Exception as e:  # noqa: BLE001
        problems.append(Problem("msg.property_unreadable", "recipient table unreadable: %s: %s" % (type(e).__name__, e)))
    f = _pst_facts(p, recipients)
    f.problems.extend(problems)
    if f.body_text is None:
        try:
            pb = m.plain_text_body
            if pb:
                f.body_text = _clean(pb.decode("utf-8", "replace") if isinstance(pb, bytes) else str(pb))
        except Exception:  # noqa: BLE001
            pass
    if f.body_html is None:
        try:
            hb = m.html_body
            if hb:
                f.body_html = (hb if isinstance(hb, bytes) else str(hb).encode("utf-8")).rstrip(b"\x00")
        except Exception:  # noqa: BLE001
            pass
    try:
        natt = m.number_of_attachments
    except Exception:  # noqa: BLE001
        natt = 0
    budget = [0]
    for i in range(natt):
        entry: dict = {}
        try:
            a = m.get_attachment(i)
            ap = _props(a, codepage)
            entry.update(_attachment_entry(ap))
            size = a.size or 0
            if ap.get(0x3705) == 5:
                # pypff: m.identifier is the message's NID, a.identifier its attachment's sub-node NID;
                # the raw property block is read only if pstndb fails and the fallback needs it
                _embedded(entry, i, lambda a=a: _ndb_attachment(ndb, m.identifier, a.identifier).embedded_message(),
                          lambda a=a, size=size: a.read_buffer(size) if size else b"", codepage, 0, budget, f)
            else:
                entry["data"] = a.read_buffer(size) if size else b""
        except Exception as e:  # noqa: BLE001
            f.problems.append(_unreadable_attachment(entry, i, e))
        f.attachments.append(entry)
    return f


def read_pst(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_pst(data, ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("pst.unreadable", "unexpected error while reading the PST: %s: %s" % (type(e).__name__, e))


def _read_pst(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        import pypff
    except ImportError as e:  # pragma: no cover
        yield Problem("pst.unreadable", "libpff-python (pypff) is not installed: %s" % e)
        return
    from leaktriage.containers.streams import io_stream
    # a memory-mapped PST is read in place, not copied, through a stream that gives the pages
    # behind a forward read back to the kernel (libpff reads a PST mostly front to back); unbuffered:
    # libpff's reads are small and scattered
    bio = io_stream(data, buffer=0)
    pst = pypff.file()
    try:
        pst.open_file_object(bio)
    except Exception as e:  # noqa: BLE001
        yield Problem("pst.unreadable", "not a readable PST/OST: %s" % e, offset=0)
        return
    try:
        codepage = "cp1252"
        try:
            cp = pst.ascii_codepage
            if cp:
                codepage = cp.replace("windows-", "cp") if isinstance(cp, str) else codepage
            "".encode(codepage)
        except Exception:  # noqa: BLE001
            codepage = "cp1252"
        store = None
        try:
            store = pst.message_store
        except Exception:  # noqa: BLE001
            store = None
        password = False
        if store is not None:
            sp = _props(store, codepage)
            pw = sp.get(0x67FF)
            password = isinstance(pw, int) and pw != 0
        if password:
            yield Problem("pst.password_protected", "the PST has a password set (PR_PST_PASSWORD); content read anyway",
                          detail={"password_crc32": "%08x" % (pw & 0xFFFFFFFF)})
        try:
            enc = pst.encryption_type
            if enc:
                yield Problem("pst.encrypted", "PST %s encryption (fixed byte substitution, no secret); decoded"
                              % {1: "compressible", 2: "high"}.get(enc, str(enc)))
        except Exception:  # noqa: BLE001
            pass
        try:
            orphans = pst.number_of_orphan_items
            if orphans:
                yield Problem("pst.orphan_items", "%d orphan items not linked into the folder tree (not read)" % orphans,
                              detail={"count": orphans})
        except Exception:  # noqa: BLE001
            pass
        try:
            root = pst.root_folder
        except Exception as e:  # noqa: BLE001
            yield Problem("pst.unreadable", "PST root folder unreadable (damaged file): %s" % e)
            return
        try:
            ndb: Union[pstndb.PstFile, PstFormatError] = pstndb.PstFile(data, codepage)
        except PstFormatError as e:
            ndb = e
        state = {"count": 0, "stopped": False}
        yield from _walk(root, [], ctx, codepage, ndb, state, password, 0)
    finally:
        try:
            pst.close()
        except Exception:  # noqa: BLE001
            pass


def _walk(folder, path: List[str], ctx: Context, codepage: str, ndb: Union[pstndb.PstFile, PstFormatError],
          state: dict, password: bool, depth: int) -> Iterator[Item]:
    fpath = "/".join(path)
    if depth > 64:
        yield Problem("pst.folder_unreadable", "folder tree deeper than 64 levels at %r; not followed" % fpath,
                      detail={"folder": fpath})
        return
    try:
        n = folder.number_of_sub_messages
    except Exception as e:  # noqa: BLE001
        yield Problem("pst.folder_unreadable", "folder %r: item list unreadable: %s" % (fpath, e), detail={"folder": fpath})
        n = 0
    for i in range(n):
        if state["stopped"]:
            return
        state["count"] += 1
        if state["count"] > ctx.limits.max_members:
            state["stopped"] = True
            yield Problem("pst.too_many_items", "more than max_members (%d) items; the rest were not read"
                          % ctx.limits.max_members, detail={"limit": ctx.limits.max_members})
            return
        try:
            m = folder.get_sub_message(i)
            nid = m.identifier
            f = pst_facts(m, codepage, ndb)
            raw, info = build_mime(f)
        except Exception as e:  # noqa: BLE001
            yield Problem("pst.item_unreadable", "item %d of folder %r unreadable: %s: %s" % (i, fpath, type(e).__name__, e),
                          detail={"folder": fpath, "index": i})
            continue
        seg = segment("pst", "%s/%d" % (fpath, nid) if fpath else str(nid))
        extra = {"folder": fpath, "pst_nid": nid}
        if password:
            extra["pst_password_protected"] = True
        yield from _item_child(f, raw, info, "pst", seg, ctx, extra)
    try:
        nf = folder.number_of_sub_folders
    except Exception as e:  # noqa: BLE001
        yield Problem("pst.folder_unreadable", "folder %r: sub-folder list unreadable: %s" % (fpath, e), detail={"folder": fpath})
        return
    for i in range(nf):
        if state["stopped"]:
            return
        try:
            sub = folder.get_sub_folder(i)
            name = sub.name or ""
        except Exception as e:  # noqa: BLE001
            yield Problem("pst.folder_unreadable", "sub-folder %d of %r unreadable: %s" % (i, fpath, e), detail={"folder": fpath})
            continue
        yield from _walk(sub, path + [name], ctx, codepage, ndb, state, password, depth + 1)
