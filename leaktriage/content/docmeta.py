"""Metadata inside attached documents: OOXML docProps, OLE SummaryInformation, PDF Info/XMP.

Readers are small and bounded: regular expressions over at most a few MiB, no XML entity expansion,
olefile only if it is installed. ``docmeta`` never raises and returns None when nothing is found.
Times are returned as UTC ISO strings; ``"tz_assumed": true`` marks a time written without a zone
(taken as UTC). What the dates say about tampering is leaktriage.auth.documents' job.
"""
from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional, Tuple


def iso(dt: Optional[datetime]) -> Optional[str]:
    """A datetime as UTC ISO-8601 with Z."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


MAX_XML = 2 << 20
MAX_PDF_SCAN = 32 << 20


def docmeta(data: bytes, mime: str = "") -> Optional[Dict[str, Any]]:
    try:
        data = bytes(data or b"")
        mime = (mime or "").lower()
        if data[:4] == b"PK\x03\x04":
            return _ooxml(data)
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            return _ole(data)
        if data[:1024].find(b"%PDF-") >= 0 or mime == "application/pdf":
            return _pdf(data)
    except Exception:
        return None
    return None


# --- OOXML -------------------------------------------------------------------------------------

def _xml_text(xml: str, tag: str) -> Optional[str]:
    m = re.search(r"<(?:\w+:)?%s\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?%s\s*>)" % (tag, tag), xml, re.S)
    if not m or m.group(1) is None:
        return None
    return _unescape_xml(re.sub(r"<[^>]+>", "", m.group(1))).strip() or None


def _unescape_xml(s: str) -> str:
    def ent(m):
        e = m.group(1)
        if e.startswith("#x"):
            try:
                return chr(int(e[2:], 16))
            except ValueError:
                return m.group(0)
        if e.startswith("#"):
            try:
                return chr(int(e[1:]))
            except ValueError:
                return m.group(0)
        return {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}.get(e, m.group(0))
    return re.sub(r"&(#x[0-9a-fA-F]+|#\d+|\w+);", ent, s)


def _w3c_time(s: Optional[str]) -> Optional[datetime]:
    if not s:
        return None
    s = s.strip()
    try:
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _read_member(z: zipfile.ZipFile, name: str) -> Optional[str]:
    try:
        info = z.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_XML:
        return None
    with z.open(info) as f:
        return f.read(MAX_XML).decode("utf-8", "replace")


def _ooxml(data: bytes) -> Optional[Dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        core = _read_member(z, "docProps/core.xml")
        app = _read_member(z, "docProps/app.xml")
    if core is None and app is None:
        return None
    out: Dict[str, Any] = {"format": "ooxml"}
    if core:
        out["creator"] = _xml_text(core, "creator")
        out["last_modified_by"] = _xml_text(core, "lastModifiedBy")
        out["created"] = iso(_w3c_time(_xml_text(core, "created")))
        out["modified"] = iso(_w3c_time(_xml_text(core, "modified")))
        out["last_printed"] = iso(_w3c_time(_xml_text(core, "lastPrinted")))
        out["revision"] = _xml_text(core, "revision")
        out["title"] = _xml_text(core, "title")
    if app:
        out["application"] = _xml_text(app, "Application")
        out["app_version"] = _xml_text(app, "AppVersion")
        out["company"] = _xml_text(app, "Company")
        out["total_time_minutes"] = _xml_text(app, "TotalTime")
    out["author"] = out.get("creator")
    return {k: v for k, v in out.items() if v is not None}


# --- OLE (legacy Office) -----------------------------------------------------------------------

_CODEPAGES = {1200: "utf-16-le", 1201: "utf-16-be", 65001: "utf-8", 10000: "mac_roman", 20127: "ascii",
              28591: "latin-1", 932: "cp932", 936: "gbk", 949: "cp949", 950: "cp950"}


def _ole(data: bytes) -> Optional[Dict[str, Any]]:
    try:
        import olefile
    except ImportError:
        return {"format": "ole", "note": "olefile is not installed: OLE metadata not read"}
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        meta = ole.get_metadata()
    cp = meta.codepage if isinstance(meta.codepage, int) else None
    enc = _CODEPAGES.get(cp or 0) or ("cp%d" % cp if cp else "cp1252")

    def txt(v):
        if v is None:
            return None
        if isinstance(v, bytes):
            try:
                s = v.decode(enc)
            except (LookupError, UnicodeDecodeError):
                s = v.decode("cp1252", "replace")
            return s.rstrip("\x00").strip() or None
        return str(v).strip() or None

    def tm(v):
        if isinstance(v, datetime):
            if v.year < 1980:   # olefile gives editing durations as datetimes near 1601
                return None
            return iso(v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v)
        return None

    out = {"format": "ole", "author": txt(meta.author), "last_modified_by": txt(meta.last_saved_by),
           "created": tm(meta.create_time), "modified": tm(meta.last_saved_time),
           "last_printed": tm(meta.last_printed), "application": txt(meta.creating_application),
           "company": txt(meta.company), "title": txt(meta.title), "code_page": cp,
           "revision": txt(meta.revision_number)}
    out["creator"] = out["author"]
    return {k: v for k, v in out.items() if v is not None}


# --- PDF ---------------------------------------------------------------------------------------

def _pdf_string(tok: bytes) -> str:
    if tok.startswith(b"<"):
        hx = re.sub(rb"[^0-9A-Fa-f]", b"", tok)
        if len(hx) % 2:
            hx += b"0"
        raw = bytes.fromhex(hx.decode())
    else:
        body = tok[1:-1]
        outb = bytearray()
        i = 0
        while i < len(body):
            c = body[i]
            if c == 0x5C and i + 1 < len(body):
                nx = body[i + 1]
                esc = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
                if nx in esc:
                    outb.append(esc[nx]); i += 2
                elif 0x30 <= nx <= 0x37:
                    m = re.match(rb"[0-7]{1,3}", body[i + 1:i + 4])
                    outb.append(int(m.group(0), 8) & 0xFF); i += 1 + len(m.group(0))
                elif nx in (10, 13):
                    i += 2
                    if nx == 13 and i < len(body) and body[i] == 10:
                        i += 1
                else:
                    outb.append(nx); i += 2
            else:
                outb.append(c); i += 1
        raw = bytes(outb)
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "replace")
    return raw.decode("latin-1")


_PDF_STR = rb"(\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)|<[0-9A-Fa-f\s]*>)"


def _pdf_date(s: Optional[str]) -> Optional[datetime]:
    if not s:
        return None
    m = re.match(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?\s*(Z|[+-])?(?:(\d{2})'?(\d{2})?'?)?", s.strip())
    if not m:
        return None
    y, mo, d, h, mi, se = (int(m.group(k) or dflt) for k, dflt in zip(range(1, 7), (0, 1, 1, 0, 0, 0)))
    try:
        dt = datetime(y, mo, d, h, mi, se)
    except ValueError:
        return None
    sign = m.group(7)
    if sign in ("+", "-"):
        off = timedelta(hours=int(m.group(8) or 0), minutes=int(m.group(9) or 0))
        dt = dt.replace(tzinfo=timezone(off if sign == "+" else -off))
    else:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _xmp(xmp: str, tag: str) -> Optional[str]:
    """An XMP property written as an element or as an attribute of rdf:Description."""
    v = _xml_text(xmp, tag)
    if v:
        return v
    m = re.search(r"\s(?:\w+:)?%s\s*=\s*[\"']([^\"']*)[\"']" % tag, xmp)
    return _unescape_xml(m.group(1)).strip() or None if m else None


_PDF_KEYS = {"Author": "author", "Creator": "application", "Producer": "producer", "Title": "title",
             "CreationDate": "created", "ModDate": "modified"}
_PDF_KEY_RE = {pk: re.compile(rb"/" + pk.encode() + rb"\s*" + _PDF_STR) for pk in _PDF_KEYS}


# one regex pass finds where any Info key's name occurs (no name holds a "/" after its first
# byte, so no match hides another); six passes of bytes.find cost six times as much
_PDF_ANY_KEY = re.compile(rb"/(" + b"|".join(pk.encode() for pk in _PDF_KEYS) + rb")")
_PDF_MAX_CANDIDATES = 4096


def _pdf_scan(buf: bytes) -> Tuple[Dict[str, Any], int, Optional[bytes]]:
    """(for each Info key the last match re.finditer(its pattern, buf) gives or None,
    buf.count(b"%%EOF"), what re.search(rb"<x:xmpmeta.*?</x:xmpmeta>", buf, re.S) matches).

    Each key's pattern is tried only where its name occurs, skipping the bytes each match covers
    as finditer does. A PDF with more key names than _PDF_MAX_CANDIDATES (hostile) is scanned
    the plain way, at C speed."""
    eofs = buf.count(b"%%EOF")
    xmp = _xmp_packet(buf, buf.find(b"<x:xmpmeta"))
    cands: Dict[bytes, list] = {}
    n = 0
    for m in _PDF_ANY_KEY.finditer(buf):
        n += 1
        if n > _PDF_MAX_CANDIDATES:
            return ({pk: next(reversed(list(_PDF_KEY_RE[pk].finditer(buf))), None) for pk in _PDF_KEYS},
                    eofs, xmp)
        cands.setdefault(m.group(1), []).append(m.start())
    last: Dict[str, Any] = {}
    for pk in _PDF_KEYS:
        pattern = _PDF_KEY_RE[pk]
        found = None
        pos = 0
        for q in cands.get(pk.encode(), ()):
            if q < pos:
                continue
            m = pattern.match(buf, q)
            if m:
                found = m
                pos = max(m.end(), q + 1)
        last[pk] = found
    return last, eofs, xmp


def _xmp_packet(buf: bytes, i: int) -> Optional[bytes]:
    """The XMP packet that starts at i (the first "<x:xmpmeta"; -1: none)."""
    if i < 0:
        return None
    j = buf.find(b"</x:xmpmeta>", i + 10)
    return buf[i:j + 12] if j >= 0 else None


def _pdf(data: bytes) -> Optional[Dict[str, Any]]:
    buf = data[:MAX_PDF_SCAN]
    out: Dict[str, Any] = {"format": "pdf"}
    last, eofs, x = _pdf_scan(buf)
    out["revisions"] = eofs or None
    for pk, k in _PDF_KEYS.items():
        m = last[pk]
        if m:
            val = _pdf_string(m.group(1)).strip()   # last one wins (incremental updates)
            if k in ("created", "modified"):
                out[k] = iso(_pdf_date(val))
                out[k + "_raw"] = val
            elif val:
                out[k] = val
    if x is not None:
        xmp = x[:MAX_XML].decode("utf-8", "replace")
        xm = {"xmp_create_date": _xmp(xmp, "CreateDate"), "xmp_modify_date": _xmp(xmp, "ModifyDate"),
              "xmp_creator_tool": _xmp(xmp, "CreatorTool"), "xmp_producer": _xmp(xmp, "Producer")}
        cr = re.search(r"<dc:creator\b.*?</dc:creator>", xmp, re.S)
        if cr:
            names = [_unescape_xml(n).strip() for n in re.findall(r"<rdf:li[^>]*>(.*?)</rdf:li>", cr.group(0), re.S)]
            xm["xmp_author"] = "; ".join(n for n in names if n) or None
        for k in ("xmp_create_date", "xmp_modify_date"):
            if xm[k]:
                xm[k] = iso(_w3c_time(xm[k])) or xm[k]
        out.update({k: v for k, v in xm.items() if v})
        out.setdefault("author", out.get("xmp_author"))
        out.setdefault("created", out.get("xmp_create_date"))
        if not out.get("modified"):
            out["modified"] = out.get("xmp_modify_date")
    out = {k: v for k, v in out.items() if v is not None}
    return out if len(out) > 1 else None
