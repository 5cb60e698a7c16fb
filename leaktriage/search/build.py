"""Build or update the search database (SQLite + FTS5) from a manifest and its dump.

    build_index(manifest_path, dump_root, db_path) -> IndexStats
    index_scan(manifest_path, dump_root, db_path)  -> IndexStats   (what `scan --db` calls)

Tables (see docs/search.md): messages, addresses, attachments, problems, findings, meta, and the
FTS5 table messages_fts (external content = messages, so Datasette and sqlite-utils recognise it).
Views: correspondents, attachments_by_type, messages_per_month.

The full-text index holds *folded* text (leaktriage.search.fold: case, accents, ligatures); the messages
table keeps the original text for display. Body text comes from the dump: each message is re-read
through its locator (bytes checked against the manifest's SHA-256), its text parts are transfer-
decoded and decoded with the charset the scan chose; HTML is turned into text with html.parser.
Every extraction failure is a row in `problems` (source 'index', codes INDEX_CODES).

Incremental: rows are keyed by locator; a message whose sha256 and manifest record are unchanged
is kept as is, changed ones are re-indexed, vanished ones deleted.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Dict, List, Optional, Tuple

from leaktriage.search.fold import FOLD_VERSION, fold

SCHEMA_VERSION = 1
MAX_BODY_CHARS = 2_000_000          # text kept per message (the rest is cut, with a problem row)
MAX_ATTACHMENT_TEXT_BYTES = 20 << 20  # attachments larger than this are not opened for text
MAX_ATTACHMENT_CHARS = 500_000

INDEX_CODES = {
    "index.bytes_unavailable": ("error", "The message bytes could not be re-read from the dump through its locator; "
                                         "its body text is not indexed (header fields are)."),
    "index.bytes_changed": ("error", "The bytes found at the locator do not match the manifest's SHA-256: the dump "
                                     "changed since the scan. The body text is not indexed; rescan."),
    "index.text_failed": ("warning", "A text part could not be decoded or converted to text; it is not indexed."),
    "index.text_truncated": ("info", "The message text is longer than the index keeps; the rest is not indexed."),
    "index.attachment_text_failed": ("warning", "Text could not be extracted from an attachment (damaged or "
                                                "unsupported document); its name is still indexed."),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    locator TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    canonical_sha256 TEXT,
    unquoted_sha256 TEXT,
    source TEXT,
    custodian TEXT,
    mailbox TEXT,
    date TEXT,
    month TEXT,
    date_raw TEXT,
    subject TEXT,
    from_address TEXT,
    from_name TEXT,
    from_text TEXT,
    to_text TEXT,
    cc_text TEXT,
    header_message_id TEXT,
    in_reply_to TEXT,
    size INTEGER,
    parts INTEGER,
    attachment_count INTEGER NOT NULL DEFAULT 0,
    attachment_names TEXT,
    dkim TEXT,
    problem_codes TEXT,
    body TEXT,
    attachment_text TEXT,
    text_status TEXT,
    record_sha1 TEXT
);
CREATE INDEX IF NOT EXISTS messages_date ON messages(date);
CREATE INDEX IF NOT EXISTS messages_month ON messages(month);
CREATE INDEX IF NOT EXISTS messages_sha256 ON messages(sha256);
CREATE INDEX IF NOT EXISTS messages_canonical ON messages(canonical_sha256);
CREATE INDEX IF NOT EXISTS messages_custodian ON messages(custodian);
CREATE INDEX IF NOT EXISTS messages_mailbox ON messages(mailbox);
CREATE INDEX IF NOT EXISTS messages_header_message_id ON messages(header_message_id);
CREATE INDEX IF NOT EXISTS messages_unquoted ON messages(unquoted_sha256);
CREATE INDEX IF NOT EXISTS messages_attachment_count ON messages(attachment_count);
CREATE INDEX IF NOT EXISTS messages_dkim ON messages(dkim);
CREATE INDEX IF NOT EXISTS messages_text_status ON messages(text_status);
CREATE TABLE IF NOT EXISTS addresses (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    position INTEGER,
    name TEXT,
    address TEXT,
    domain TEXT
);
CREATE INDEX IF NOT EXISTS addresses_message ON addresses(message_id);
DROP INDEX IF EXISTS addresses_address;
DROP INDEX IF EXISTS addresses_domain;
CREATE INDEX IF NOT EXISTS addresses_address_role ON addresses(address, role, message_id);
CREATE INDEX IF NOT EXISTS addresses_domain_role ON addresses(domain, role, message_id);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    locator TEXT NOT NULL,
    part TEXT,
    filename TEXT,
    extension TEXT,
    type TEXT,
    content_type TEXT,
    magic TEXT,
    size INTEGER,
    sha256 TEXT,
    mismatch TEXT,
    text_chars INTEGER
);
CREATE INDEX IF NOT EXISTS attachments_message ON attachments(message_id);
CREATE INDEX IF NOT EXISTS attachments_sha256 ON attachments(sha256);
DROP INDEX IF EXISTS attachments_type;
CREATE INDEX IF NOT EXISTS attachments_type_message ON attachments(type, message_id);
CREATE INDEX IF NOT EXISTS attachments_extension_message ON attachments(extension, message_id);
CREATE INDEX IF NOT EXISTS attachments_magic_message ON attachments(magic, message_id);
CREATE INDEX IF NOT EXISTS attachments_content_type_message ON attachments(content_type, message_id);
CREATE TABLE IF NOT EXISTS problems (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    locator TEXT NOT NULL,
    code TEXT NOT NULL,
    severity TEXT,
    stage TEXT,
    origin TEXT NOT NULL,
    description TEXT,
    byte_offset INTEGER,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS problems_message ON problems(message_id);
DROP INDEX IF EXISTS problems_code;
CREATE INDEX IF NOT EXISTS problems_code_message ON problems(code, message_id);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    severity TEXT,
    domain TEXT,
    selector TEXT,
    explanation TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS findings_message ON findings(message_id);
DROP INDEX IF EXISTS findings_code;
CREATE INDEX IF NOT EXISTS findings_code_kind_message ON findings(code, kind, message_id);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    subject, from_text, to_text, cc_text, attachment_names, body, attachment_text,
    content="messages", content_rowid="id", tokenize="unicode61 remove_diacritics 2"
);
CREATE VIEW IF NOT EXISTS correspondents AS
    SELECT a.address AS address, max(a.name) AS name, a.domain AS domain,
           sum(a.role IN ('from', 'sender')) AS sent,
           sum(a.role IN ('to', 'cc', 'bcc')) AS received,
           count(DISTINCT a.message_id) AS messages,
           min(m.date) AS first_date, max(m.date) AS last_date
    FROM addresses a JOIN messages m ON m.id = a.message_id
    WHERE a.address IS NOT NULL
    GROUP BY a.address;
CREATE VIEW IF NOT EXISTS attachments_by_type AS
    SELECT coalesce(type, '(unknown)') AS type, count(*) AS attachments,
           count(DISTINCT sha256) AS unique_files, sum(size) AS total_bytes,
           count(DISTINCT message_id) AS messages, sum(mismatch IS NOT NULL) AS mismatches
    FROM attachments GROUP BY coalesce(type, '(unknown)');
CREATE VIEW IF NOT EXISTS messages_per_month AS
    SELECT coalesce(month, '(undated)') AS month, count(*) AS messages,
           sum(attachment_count > 0) AS with_attachments,
           count(DISTINCT canonical_sha256) AS distinct_emails
    FROM messages GROUP BY coalesce(month, '(undated)');
"""

FTS_COLUMNS = ("subject", "from_text", "to_text", "cc_text", "attachment_names", "body", "attachment_text")

# libmagic / declared MIME type -> short type name used by `type:`
SHORT_TYPES = {
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/zip": "zip",
    "application/x-7z-compressed": "7z",
    "application/x-rar": "rar",
    "application/vnd.rar": "rar",
    "application/gzip": "gz",
    "application/x-tar": "tar",
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/webp": "webp",
    "image/heic": "heic",
    "text/plain": "txt",
    "text/csv": "csv",
    "text/html": "html",
    "text/calendar": "ics",
    "text/rtf": "rtf",
    "application/rtf": "rtf",
    "message/rfc822": "eml",
    "application/vnd.ms-outlook": "msg",
    "application/ms-tnef": "tnef",
    "application/vnd.ms-tnef": "tnef",
    "audio/mpeg": "mp3",
    "video/mp4": "mp4",
}
EXT_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff", "htm": "html", "text": "txt"}


def short_type(magic: Optional[str], content_type: Optional[str], filename: Optional[str]) -> Optional[str]:
    for t in (magic, content_type):
        if t and t in SHORT_TYPES:
            return SHORT_TYPES[t]
    ext = extension(filename)
    if ext:
        return EXT_ALIASES.get(ext, ext)
    t = magic or content_type
    return t.split("/", 1)[-1] if t and t not in ("application/octet-stream",) else None


def extension(filename: Optional[str]) -> Optional[str]:
    if not filename or "." not in filename:
        return None
    ext = filename.rsplit(".", 1)[1].strip().lower()
    return ext if 0 < len(ext) <= 10 and ext.isalnum() else None


# --------------------------------------------------------------------------------------------
# HTML -> text (stdlib only)

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
          "pre", "hr", "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer", "title"}
_SKIP = {"script", "style", "head", "noscript", "template"}


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: List[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.out.append("\n")
        elif tag == "td" or tag == "th":
            self.out.append("\t")
        elif tag == "img":
            for k, v in attrs:
                if k == "alt" and v:
                    self.out.append(" %s " % v)

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


_WS_RUN = re.compile(r"[ \t\r\f\v\u00a0]+")
_NL_RUN = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> str:
    p = _TextParser()
    p.feed(html)
    p.close()
    text = "".join(p.out)
    text = _WS_RUN.sub(" ", text)
    text = _NL_RUN.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


# --------------------------------------------------------------------------------------------
# Attachment text (stdlib only: OOXML / ODF are zip + XML)

_XML_TEXT = {
    "docx": ("word/document.xml", re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>|<w:(?:p|br|tab)\b[^>]*/?>")),
    "xlsx": ("xl/sharedStrings.xml", re.compile(rb"<t(?:\s[^>]*)?>([^<]*)</t>")),
    "pptx": (None, re.compile(rb"<a:t>([^<]*)</a:t>")),
    "odt": ("content.xml", re.compile(rb">([^<]+)<")),
    "ods": ("content.xml", re.compile(rb">([^<]+)<")),
}


def _xml_unescape(b: bytes) -> str:
    import html
    return html.unescape(b.decode("utf-8", "replace"))


def attachment_text(data: bytes, kind: Optional[str]) -> Optional[str]:
    """Text of an attachment, or None when its type is not extracted. Raises on damaged files."""
    if kind in ("txt", "csv"):
        from leaktriage.mail import charsets
        return charsets.decode_text(data, None).text
    if kind in ("html",):
        from leaktriage.mail import charsets
        return html_to_text(charsets.decode_text(data, None).text)
    if kind in _XML_TEXT:
        import io
        import zipfile
        member, rx = _XML_TEXT[kind]
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if member is None:
                names = sorted(n for n in z.namelist() if n.startswith("ppt/slides/slide") and n.endswith(".xml"))
            else:
                names = [member] if member in z.namelist() else []
            out = []
            total = 0
            for n in names:
                info = z.getinfo(n)
                if info.file_size > 64 << 20:
                    raise ValueError("%s expands to %d bytes" % (n, info.file_size))
                xml = z.read(n)
                for m in rx.finditer(xml):
                    g = m.group(1)
                    out.append(_xml_unescape(g) if g is not None else "\n")
                    total += len(out[-1])
                    if total > MAX_ATTACHMENT_CHARS:
                        break
            if kind == "docx":
                return "".join(out)
            return " ".join(s for s in out if s.strip())
    if kind == "pdf":
        try:
            import pypdf  # optional: only used when installed
        except ImportError:
            return None
        import io
        reader = pypdf.PdfReader(io.BytesIO(data))
        out = []
        for page in reader.pages[:200]:
            out.append(page.extract_text() or "")
            if sum(map(len, out)) > MAX_ATTACHMENT_CHARS:
                break
        return "\n".join(out)
    return None


# --------------------------------------------------------------------------------------------
# Bytes from the dump, through locators, with caches so a zip or an mbox is opened once

class Fetcher:
    def __init__(self, dump_root: str, budget: int = 512 << 20):
        self.root = dump_root
        self.budget = budget
        self.cache: "OrderedDict[str, bytes]" = OrderedDict()
        self.size = 0
        self.children: "OrderedDict[str, Dict[str, Optional[bytes]]]" = OrderedDict()
        self.mbox_index: Dict[str, Dict[int, Tuple[int, int, str]]] = {}

    def _remember(self, loc: str, data: bytes) -> bytes:
        if len(data) > self.budget // 4:
            return data
        self.cache[loc] = data
        self.size += len(data)
        while self.size > self.budget and self.cache:
            _, old = self.cache.popitem(last=False)
            self.size -= len(old)
        return data

    def item(self, loc: str) -> bytes:
        """Bytes of the item named by loc (mbox messages un-quoted, MIME parts decoded)."""
        got = self.cache.get(loc)
        if got is not None:
            self.cache.move_to_end(loc)
            return got
        from leaktriage.model import locator as L
        from leaktriage.manifest.resolver import ResolveError, entity_bytes, read_path
        steps = L.parse(loc)
        if len(steps) == 1:
            return self._remember(loc, read_path(self.root, steps[0].raw()))
        last = steps[-1]
        sep = "#" if last.kind == "part" else "!"
        plen = len(loc) - len(last.value) - (1 if last.kind == "part" else len(last.kind) + 2)
        parent = loc[:plen]
        assert loc[plen] == sep, (loc, parent)
        if last.kind not in ("part", "mbox", "uu") and parent in self.children:
            pdata = b""  # the container's members are cached: no need to read it again
        else:
            pdata = self.item(parent)
        if last.kind == "part":
            data = entity_bytes(pdata, last.value, "1")
        elif last.kind == "mbox":
            data = self._mbox(parent, pdata, int(last.value))
        elif last.kind == "uu":
            from leaktriage.mail import transfer
            for i, found in enumerate(transfer.find_uuencoded(pdata), 1):
                if i == int(last.value):
                    data = found[4]
                    break
            else:
                raise ResolveError("no uuencoded file %s in %s" % (last.value, parent))
        else:
            kids = self._children(parent, pdata)
            want = "%s:%s" % (last.kind, last.value)
            if want not in kids:
                raise ResolveError("no member %s in %s" % (want, parent))
            data = kids[want]
            if data is None:
                raise ResolveError("%s could not be read (see its problem records)" % loc)
        return self._remember(loc, data)

    def _mbox(self, loc: str, data: bytes, marker: int) -> bytes:
        from leaktriage.mail import mbox
        from leaktriage.manifest.resolver import ResolveError
        idx = self.mbox_index.get(loc)
        if idx is None:
            sp = mbox.split(data, 0, len(data))
            idx = {e.marker_offset: (e.offset, e.end, sp.variant) for e in sp.entries}
            self.mbox_index = {loc: idx}
        if marker not in idx:
            raise ResolveError("no mbox message with its From line at byte %d in %s" % (marker, loc))
        a, b, variant = idx[marker]
        return mbox.unquote(data[a:b], variant)[0]

    def _children(self, loc: str, data: bytes) -> Dict[str, Optional[bytes]]:
        kids = self.children.get(loc)
        if kids is not None:
            return kids
        from leaktriage.content import sniff
        from leaktriage.containers import Child, Context, Limits, reader
        from leaktriage.manifest.resolver import ResolveError
        kind = sniff.container_kind(data[:65536])
        rd = reader(kind) if kind else None
        if rd is None:
            raise ResolveError("%s is not a container leaktriage can open (kind %s)" % (loc, kind))
        kids = {}
        for obj in rd(data, Context(locator=loc, depth=0, limits=Limits())):
            if isinstance(obj, Child):
                kids[obj.segment] = obj.data
        self.children[loc] = kids
        while len(self.children) > 2:
            self.children.popitem(last=False)
        return kids

    def message(self, msg: dict) -> bytes:
        """The message as sent (mbox quoting undone), checked against the manifest's SHA-256."""
        from leaktriage.model import locator as L
        loc = msg["locator"]
        steps = L.parse(loc)
        if steps[-1].kind == "mbox" and msg.get("offset") is not None and len(steps) == 2 \
                and steps[0].value not in self.cache:
            # an mbox on disk: read just this message (mbox files can be gigabytes)
            stored = self._slice(steps[0].raw(), msg["offset"], msg["length"])
        elif steps[-1].kind == "mbox" and msg.get("offset") is not None:
            parent = loc[:loc.rindex("!")]
            pdata = self.item(parent)
            stored = pdata[msg["offset"]:msg["offset"] + msg["length"]]
        elif steps[-1].kind == "mbox":
            # no offset recorded: split the mbox (un-quoted bytes come back)
            stored = None
        else:
            stored = self.item(loc)
            if msg.get("offset") is not None and msg.get("length") is not None \
                    and len(stored) != msg["length"]:
                stored = stored[msg["offset"]:msg["offset"] + msg["length"]]
        if stored is None:
            data = self.item(loc)
            if msg.get("unquoted_sha256") and hashlib.sha256(data).hexdigest() != msg["unquoted_sha256"]:
                raise _Changed(loc)
            return data
        if msg.get("sha256") and hashlib.sha256(stored).hexdigest() != msg["sha256"]:
            if msg.get("reconstructed"):
                # an Outlook item: the message is leaktriage's reconstruction, made by the container reader
                return self._reconstruction(loc, stored, msg["sha256"])
            raise _Changed(loc)
        mb = msg.get("mbox")
        if mb and msg.get("unquoted_sha256"):
            from leaktriage.mail import mbox
            stored = mbox.unquote(stored, mb.get("variant", "mboxrd"))[0]
        return stored


    def _slice(self, rel: bytes, offset: int, length: int) -> bytes:
        from leaktriage.manifest.resolver import ResolveError
        full = os.path.join(os.fsencode(self.root), rel)
        if os.path.islink(full):
            raise ResolveError("%s is a symbolic link (never followed)" % os.fsdecode(rel))
        with open(full, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def _reconstruction(self, loc: str, data: bytes, sha: str) -> bytes:
        from leaktriage.manifest.resolver import ResolveError
        try:
            kids = self._children(loc, data)
        except ResolveError:
            kids = {}
        for blob in kids.values():
            if blob is not None and hashlib.sha256(blob).hexdigest() == sha:
                return blob
        raise ResolveError("the reconstructed message %s could not be rebuilt" % loc)


class _Changed(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Extraction of one message's text (runs in worker processes)

def _decode_part(data: bytes, p: dict) -> str:
    from leaktriage.mail import charsets, transfer
    raw = data[p["body_offset"]:p["body_offset"] + p["body_length"]]
    dec = transfer.decode(raw, p.get("cte"))[0]
    codec = charsets.lookup(p.get("charset")) if p.get("charset") else None
    if codec:
        t = charsets.decode_strict(dec, codec)
        if t is not None:
            return t
        try:
            return dec.decode(codec, "replace")
        except LookupError:
            pass
    return charsets.decode_text(dec, p.get("charset_declared")).text


def _text_parts(parts: List[dict]) -> List[dict]:
    """Parts whose text is the message body: text/plain and text/html that are not attachments;
    an HTML alternative of a text/plain part is skipped (same text twice)."""
    by_path = {p["path"]: p for p in parts}
    plain_parents = set()
    for p in parts:
        if p["content_type"] == "text/plain" and not p.get("attachment") and "uu_offset" not in p:
            plain_parents.add(p["path"].rpartition(".")[0])
    out = []
    for p in parts:
        if p.get("attachment") or "uu_offset" in p or "body_offset" not in p:
            continue
        ct = p["content_type"]
        if ct == "text/plain":
            out.append(p)
        elif ct in ("text/html", "text/enriched", "text/richtext"):
            parent = p["path"].rpartition(".")[0]
            pp = by_path.get(parent)
            if parent in plain_parents and pp is not None and pp["content_type"] == "multipart/alternative":
                continue
            out.append(p)
    return out


def extract_message(fetcher: Fetcher, msg: dict, parts: List[dict], with_attachments: bool = True):
    """-> (body text or None, {attachment locator: chars}, [problem rows], status)"""
    problems: List[tuple] = []
    loc = msg["locator"]
    try:
        data = fetcher.message(msg)
    except _Changed:
        problems.append((loc, "index.bytes_changed", None, None))
        return None, {}, problems, "bytes_changed", ""
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
        problems.append((loc, "index.bytes_unavailable", None, {"error": "%s: %s" % (type(exc).__name__, exc)}))
        return None, {}, problems, "bytes_unavailable", ""
    texts: List[str] = []
    for p in _text_parts(parts):
        try:
            t = _decode_part(data, p)
            if p["content_type"] != "text/plain":
                t = html_to_text(t)
            texts.append(t)
        except Exception as exc:  # noqa: BLE001
            problems.append((p["locator"], "index.text_failed", None, {"error": "%s: %s" % (type(exc).__name__, exc)}))
    att_text: Dict[str, int] = {}
    extra: List[str] = []
    if with_attachments:
        for p in parts:
            if not p.get("attachment") or "uu_offset" in p or "body_offset" not in p:
                continue
            if (p.get("size") or 0) > MAX_ATTACHMENT_TEXT_BYTES:
                continue
            kind = short_type(p.get("magic"), p.get("content_type"), p.get("filename"))
            if kind not in ("txt", "csv", "html", "docx", "xlsx", "pptx", "odt", "ods", "pdf"):
                continue
            try:
                from leaktriage.mail import transfer
                raw = data[p["body_offset"]:p["body_offset"] + p["body_length"]]
                blob = transfer.decode(raw, p.get("cte"))[0]
                t = attachment_text(blob, kind)
            except Exception as exc:  # noqa: BLE001
                problems.append((p["locator"], "index.attachment_text_failed", None,
                                 {"type": kind, "error": "%s: %s" % (type(exc).__name__, str(exc)[:200])}))
                continue
            if t:
                t = t[:MAX_ATTACHMENT_CHARS]
                att_text[p["locator"]] = len(t)
                extra.append(t)
    body = "\n\n".join(x for x in texts if x)
    status = "ok"
    if len(body) > MAX_BODY_CHARS:
        problems.append((loc, "index.text_truncated", None, {"chars": len(body), "kept": MAX_BODY_CHARS}))
        body = body[:MAX_BODY_CHARS]
        status = "truncated"
    return body, att_text, problems, status, "\n".join(extra)


_WORKER: Dict[str, object] = {}


def _worker_init(dump_root: str, with_attachments: bool):
    _WORKER["fetcher"] = Fetcher(dump_root, budget=256 << 20)
    _WORKER["att"] = with_attachments


def _worker_run(batch):
    f = _WORKER["fetcher"]
    out = []
    for msg, parts in batch:
        out.append((msg["locator"],) + extract_message(f, msg, parts, _WORKER["att"]))
    return out


# --------------------------------------------------------------------------------------------
# The manifest

@dataclass
class Manifest:
    messages: List[dict] = field(default_factory=list)          # parsed: new or changed messages only
    parts: Dict[str, List[dict]] = field(default_factory=dict)  # parts of those messages
    problems: List[dict] = field(default_factory=list)
    mailboxes: List[dict] = field(default_factory=list)     # mailbox records (mailbox-wide indicators)
    digests: Dict[str, str] = field(default_factory=dict)   # locator -> sha1 of its JSON line (parsed ones)
    locators: List[str] = field(default_factory=list)       # every message locator, in manifest order
    unchanged: int = 0
    sha256: Optional[str] = None


_MSG_DROP = ("headers", "received", "references", "container_meta", "arc_sets")
# A JSON string cannot contain an unescaped quote, so these byte patterns only match real keys.
_KIND = re.compile(rb'"record":\s*"(message|part|problem|mailbox)"')
_STRING = re.compile(rb'\s*("(?:[^"\\]|\\.)*")')


def _kind(line: bytes) -> Optional[bytes]:
    # substring tests run at memchr speed; the regex only for non-compact JSON
    for k in (b"part", b"message", b"problem", b"mailbox"):
        if b'"record":"' + k + b'"' in line:
            return k
    if b'"record": ' in line:
        mo = _KIND.search(line)
        return mo.group(1) if mo else None
    return None


def _string_value(line: bytes, key: bytes) -> Optional[str]:
    """The first top-level-looking string value of key in a JSON line, without parsing the line."""
    i = line.find(b'"' + key + b'":')
    if i < 0:
        return None
    mo = _STRING.match(line, i + len(key) + 3)
    return json.loads(mo.group(1)) if mo else None


def read_manifest(path: str, known: Optional[Dict[str, str]] = None) -> Manifest:
    """Read a manifest. With `known` (locator -> line digest already indexed), message records whose
    line is unchanged are only counted, not parsed: a re-index of an unchanged dump stays cheap."""
    m = Manifest()
    h = hashlib.sha256()
    loads = json.loads
    known = known or {}
    want = set()
    with open(path, "rb") as f:
        for line in f:                          # pass 1: messages and problems
            h.update(line)
            kind = _kind(line)
            if kind == b"message":
                loc = _string_value(line, b"locator")
                if loc is None:
                    loc = loads(line)["locator"]
                digest = hashlib.sha1(line).hexdigest()
                if known.get(loc) == digest:     # the same line as indexed before: loc is proven
                    m.locators.append(loc)
                    m.unchanged += 1
                    continue
                r = loads(line)
                m.locators.append(r["locator"])
                for k in _MSG_DROP:
                    r.pop(k, None)
                m.messages.append(r)
                m.digests[r["locator"]] = digest
                want.add(r["locator"])
            elif kind == b"problem":
                m.problems.append(loads(line))
            elif kind == b"mailbox":
                m.mailboxes.append(loads(line))
    m.sha256 = h.hexdigest()
    if want:
        with open(path, "rb") as f:
            for line in f:                      # pass 2: parts of the messages to (re)index
                if _kind(line) != b"part":
                    continue
                ref = _string_value(line, b"message")
                if ref is not None and ref not in want:
                    continue
                r = loads(line)
                if r.get("message") in want:
                    m.parts.setdefault(r["message"], []).append({k: r[k] for k in _PART_KEEP if k in r})
    return m


def _group_key(loc: str) -> str:
    """Top-level file of a locator (messages of one file are extracted together)."""
    cut = len(loc)
    for ch in "!#":
        i = loc.find(ch)
        if i >= 0:
            cut = min(cut, i)
    return loc[:cut]


def _addr_text(lst: Optional[list]) -> str:
    out = []
    for a in lst or ():
        name, addr = a.get("name"), a.get("address")
        if name and addr:
            out.append("%s <%s>" % (name, addr))
        elif addr or name:
            out.append(addr or name)
        elif a.get("group"):
            out.append(a["group"])
    return ", ".join(out)


# --------------------------------------------------------------------------------------------
# The database

@dataclass
class IndexStats:
    messages: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    problems: int = 0
    text_failures: int = 0
    seconds: float = 0.0
    db_bytes: int = 0
    rebuilt: bool = False

    def as_dict(self):
        return dict(self.__dict__)


def connect(db_path: str) -> sqlite3.Connection:
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA foreign_keys = ON")
    return con


def _fts_values(row) -> tuple:
    return tuple(fold(v or "") for v in row)


def _message_row(r: dict, body: Optional[str], status: str, digest: str, att_text: Optional[str]) -> dict:
    frm = r.get("from") or r.get("sender") or []
    first = frm[0] if frm else {}
    date = r.get("date")
    names = r.get("attachment_names") or []
    return {
        "locator": r["locator"], "sha256": r.get("sha256") or "", "canonical_sha256": r.get("canonical_sha256"),
        "unquoted_sha256": r.get("unquoted_sha256"), "source": r.get("source"), "custodian": r.get("custodian"),
        "mailbox": r.get("mailbox"), "date": date, "month": date[:7] if date else None,
        "date_raw": r.get("date_raw"), "subject": r.get("subject"),
        "from_address": (first.get("address") or "").lower() or None, "from_name": first.get("name"),
        "from_text": _addr_text((r.get("from") or []) + (r.get("sender") or [])),
        "to_text": _addr_text(r.get("to")),
        "cc_text": _addr_text((r.get("cc") or []) + (r.get("bcc") or [])),
        "header_message_id": r.get("message_id"),
        "in_reply_to": " ".join(r.get("in_reply_to") or []) or None,
        "size": r.get("length"), "parts": r.get("parts"),
        "attachment_count": r.get("attachments") or 0,
        "attachment_names": "\n".join(names) or None,
        "dkim": r.get("dkim_summary") or ("none" if "dkim" in r else None),
        "problem_codes": " ".join(r.get("problem_codes") or []) or None,
        "body": body, "attachment_text": att_text or None, "text_status": status, "record_sha1": digest,
    }


_MSG_COLS = ("locator", "sha256", "canonical_sha256", "unquoted_sha256", "source", "custodian", "mailbox",
             "date", "month", "date_raw", "subject", "from_address", "from_name", "from_text", "to_text",
             "cc_text", "header_message_id", "in_reply_to", "size", "parts", "attachment_count",
             "attachment_names", "dkim", "problem_codes", "body", "attachment_text", "text_status", "record_sha1")


def _delete_messages(con: sqlite3.Connection, ids: List[int]) -> None:
    cols = ", ".join(FTS_COLUMNS)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        q = ",".join("?" * len(chunk))
        rows = con.execute("SELECT id, %s FROM messages WHERE id IN (%s)" % (cols, q), chunk).fetchall()
        con.executemany("INSERT INTO messages_fts(messages_fts, rowid, %s) VALUES ('delete', ?, %s)"
                        % (cols, ",".join("?" * len(FTS_COLUMNS))),
                        [(row[0],) + _fts_values(row[1:]) for row in rows])
        con.execute("DELETE FROM messages WHERE id IN (%s)" % q, chunk)


def _insert_message(con, r: dict, body, status, digest, att_chars, att_text) -> int:
    row = _message_row(r, body, status, digest, att_text)
    cur = con.execute("INSERT INTO messages (%s) VALUES (%s)" % (", ".join(_MSG_COLS), ",".join("?" * len(_MSG_COLS))),
                      [row[c] for c in _MSG_COLS])
    mid = cur.lastrowid
    con.execute("INSERT INTO messages_fts(rowid, %s) VALUES (?, %s)"
                % (", ".join(FTS_COLUMNS), ",".join("?" * len(FTS_COLUMNS))),
                [mid] + [fold(row[c] or "") for c in FTS_COLUMNS])
    addr_rows = []
    for role in ("from", "sender", "reply_to", "to", "cc", "bcc"):
        for pos, a in enumerate(r.get(role) or ()):
            addr = (a.get("address") or "").strip().lower() or None
            dom = addr.rpartition("@")[2] if addr and "@" in addr else None
            addr_rows.append((mid, role, pos, a.get("name") or a.get("group"), addr, dom))
    if addr_rows:
        con.executemany("INSERT INTO addresses (message_id, role, position, name, address, domain) "
                        "VALUES (?,?,?,?,?,?)", addr_rows)
    return mid


def _attachment_rows(mid: int, parts: List[dict], att_chars: Dict[str, int]):
    for p in parts:
        if not p.get("attachment"):
            continue
        fn = p.get("filename")
        yield (mid, p["locator"], p.get("path"), fn, extension(fn),
               short_type(p.get("magic"), p.get("content_type"), fn), p.get("content_type"), p.get("magic"),
               p.get("size"), p.get("sha256"), " ".join(p.get("mismatch") or []) or None,
               att_chars.get(p["locator"]))


def _finding_rows(mid: int, r: dict):
    for s in r.get("dkim") or ():
        yield (mid, "dkim", s.get("verdict") or "unknown", None, s.get("d"), s.get("s"), s.get("reason"),
               json.dumps(s, sort_keys=True, ensure_ascii=False, default=str))
    arc = r.get("arc")
    if isinstance(arc, dict) and arc.get("verdict") and arc.get("verdict") != "none":
        yield (mid, "arc", arc["verdict"], None, None, None, arc.get("reason"),
               json.dumps(arc, sort_keys=True, ensure_ascii=False, default=str))
    for ind in r.get("indicators") or ():
        yield (mid, "indicator", ind.get("code") or "unknown", ind.get("severity"), None, None,
               ind.get("explanation"), json.dumps(ind.get("evidence"), sort_keys=True, ensure_ascii=False, default=str))


def _mailbox_rows(ids: Dict[str, int], mailboxes: List[dict]):
    for box in mailboxes:
        for ind in box.get("indicators") or ():
            ev = ind.get("evidence") or {}
            detail = json.dumps(dict(ev, mailbox=box.get("locator")), sort_keys=True, ensure_ascii=False, default=str)
            for loc in ev.get("messages") or ():
                mid = ids.get(loc)
                if mid is not None:
                    yield (mid, "mailbox", ind.get("code") or "unknown", ind.get("severity"), None, None,
                           ind.get("explanation"), detail)


def _init_db(con: sqlite3.Connection) -> bool:
    """Create the schema; returns True when an existing incompatible index was wiped."""
    wiped = False
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        meta = None
    if meta is not None and (meta.get("schema_version") != str(SCHEMA_VERSION)
                             or meta.get("fold_version") != str(FOLD_VERSION)):
        for (name, typ) in con.execute("SELECT name, type FROM sqlite_master WHERE type IN ('view')").fetchall():
            con.execute("DROP VIEW IF EXISTS \"%s\"" % name)
        for t in ("messages_fts", "findings", "problems", "attachments", "addresses", "messages", "meta"):
            con.execute("DROP TABLE IF EXISTS %s" % t)
        wiped = True
    con.executescript(SCHEMA)
    return wiped


def build_index(manifest_path: str, dump_root: str, db_path: str, *, workers: int = 0,
                attachment_text: bool = True, progress=None) -> IndexStats:
    """Create or update db_path from the manifest and the dump it describes."""
    t0 = time.monotonic()
    stats = IndexStats()
    con = connect(db_path)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA journal_mode = MEMORY")
    con.execute("PRAGMA cache_size = -200000")
    stats.rebuilt = _init_db(con)
    existing = {loc: (i, sha, dig) for i, loc, sha, dig in
                con.execute("SELECT id, locator, sha256, record_sha1 FROM messages")}
    # a message is unchanged when its manifest line is byte-identical (same sha256, same facts)
    man = read_manifest(manifest_path, {loc: v[2] for loc, v in existing.items()})
    seen = set(man.locators)
    stats.messages = len(seen)
    stats.unchanged = man.unchanged
    todo: List[dict] = []
    queued = set()
    for r in man.messages:
        loc = r["locator"]
        if loc in queued:
            continue
        queued.add(loc)
        if loc in existing:
            stats.updated += 1
        else:
            stats.added += 1
        todo.append(r)
    gone = [v[0] for loc, v in existing.items() if loc not in seen]
    stats.removed = len(gone)
    with con:
        _delete_messages(con, gone + [existing[r["locator"]][0] for r in todo if r["locator"] in existing])
    by_loc = {r["locator"]: r for r in todo}
    ins_prob = ("INSERT INTO problems (message_id, locator, code, severity, stage, origin, description, byte_offset,"
                " detail) VALUES (?,?,?,?,?,?,?,?,?)")
    with con:
        for loc, body, att_chars, probs, status, att_text in _extract_all(todo, man.parts, dump_root, workers,
                                                                           attachment_text, progress):
            r = by_loc.pop(loc)
            parts = man.parts.get(loc, [])
            mid = _insert_message(con, r, body, status, man.digests.get(loc), att_chars, att_text)
            con.executemany("INSERT INTO attachments (message_id, locator, part, filename, extension, type, content_type,"
                            " magic, size, sha256, mismatch, text_chars) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            list(_attachment_rows(mid, parts, att_chars)))
            con.executemany("INSERT INTO findings (message_id, kind, code, severity, domain, selector, explanation,"
                            " detail) VALUES (?,?,?,?,?,?,?,?)", list(_finding_rows(mid, r)))
            for ploc, code, off, detail in probs:
                sev, desc = INDEX_CODES[code]
                con.execute(ins_prob, (mid, ploc, code, sev, "index", "index", desc, off,
                                       json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else None))
                stats.text_failures += 1
        # scan problems: replaced wholesale (cheap), linked to their message when they are inside one
        con.execute("DELETE FROM problems WHERE origin = 'scan'")
        ids = dict(con.execute("SELECT locator, id FROM messages"))
        rows = []
        for p in man.problems:
            ploc = p["locator"]
            owner = _owner(ids, ploc)
            rows.append((owner, ploc, p.get("code"), p.get("severity"), p.get("stage"), "scan", p.get("message"),
                         p.get("offset"), json.dumps(p["detail"], sort_keys=True, ensure_ascii=False)
                         if p.get("detail") else None))
        con.executemany(ins_prob, rows)
        # mailbox-wide indicators: replaced wholesale too, one row per message carrying the evidence
        con.execute("DELETE FROM findings WHERE kind = 'mailbox'")
        con.executemany("INSERT INTO findings (message_id, kind, code, severity, domain, selector, explanation,"
                        " detail) VALUES (?,?,?,?,?,?,?,?)", list(_mailbox_rows(ids, man.mailboxes)))
        stats.problems = con.execute("SELECT count(*) FROM problems").fetchone()[0]
        meta = {"schema_version": SCHEMA_VERSION, "fold_version": FOLD_VERSION,
                "manifest": os.path.abspath(manifest_path), "manifest_sha256": man.sha256,
                "dump": os.path.abspath(dump_root), "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        [(k, str(v)) for k, v in meta.items()])
    if todo or gone:
        con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
        con.execute("ANALYZE")
        con.commit()
    con.close()
    stats.seconds = round(time.monotonic() - t0, 3)
    stats.db_bytes = os.path.getsize(db_path)
    return stats


def _owner(ids: Dict[str, int], loc: str) -> Optional[int]:
    """Id of the message a locator is in: the message itself, or the nearest enclosing one
    (X#1.2.1 -> X#1.2 (an attached message) -> X#1 -> X)."""
    while True:
        got = ids.get(loc)
        if got is not None:
            return got
        base, sep, pp = loc.rpartition("#")
        if sep and "!" not in pp:
            loc = base + "#" + pp.rpartition(".")[0] if "." in pp else base
        elif "!" in loc:
            loc = loc[:loc.rindex("!")]
        else:
            return None


def _extract_all(todo: List[dict], parts: Dict[str, List[dict]], dump_root: str, workers: int,
                 with_attachments: bool, progress=None):
    """Yield (locator, body, attachment chars, problems, status, attachment text) per message."""
    if not todo:
        return
    # batches follow the dump layout: messages of one top-level file stay together (one read, one unzip)
    groups: "OrderedDict[str, List[tuple]]" = OrderedDict()
    for r in todo:
        slim_parts = [p for p in parts.get(r["locator"], ())]
        groups.setdefault(_group_key(r["locator"]), []).append((_slim(r), [_slim_part(p) for p in slim_parts]))
    batches: List[list] = []
    for items in groups.values():
        for i in range(0, len(items), 200):
            batches.append(items[i:i + 200])
    if workers is None or workers <= 0:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover
            workers = os.cpu_count() or 1
    done = 0
    if workers <= 1 or len(todo) < 200:
        _worker_init(dump_root, with_attachments)
        for b in batches:
            yield from _worker_run(b)
            done += len(b)
            if progress:
                progress(done, len(todo))
        return
    import multiprocessing as mp
    ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
    with ctx.Pool(workers, initializer=_worker_init, initargs=(dump_root, with_attachments)) as pool:
        for res in pool.imap(_worker_run, batches):
            yield from res
            done += len(res)
            if progress:
                progress(done, len(todo))


_MSG_KEEP = ("locator", "offset", "length", "sha256", "unquoted_sha256", "mbox")
_PART_KEEP = ("locator", "path", "content_type", "cte", "charset", "charset_declared", "body_offset",
              "body_length", "attachment", "uu_offset", "size", "magic", "filename", "sha256", "mismatch")


def _slim(r: dict) -> dict:
    return {k: r[k] for k in _MSG_KEEP if k in r}


def _slim_part(p: dict) -> dict:
    return {k: p[k] for k in _PART_KEEP if k in p}


def index_scan(manifest_path: str, dump_root: str, db_path: str, **kw) -> IndexStats:
    """Index a freshly written manifest (what `leaktriage scan --db` calls)."""
    return build_index(manifest_path, dump_root, db_path, **kw)
