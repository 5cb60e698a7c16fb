"""The search database's schema (SQLite + FTS5) and the names it uses for types.

Tables (see docs/search.md): messages, addresses, attachments, problems, findings, meta, and the
FTS5 table messages_fts (external content = messages, so Datasette and sqlite-utils recognise it).
Views: inbox (one row per email), correspondents, attachments_by_type, messages_per_month.
SCHEMA_VERSION changes with the schema: an index of another version is rebuilt from scratch (so is one
whose analyses changed: leaktriage.search.analysis).
"""
from __future__ import annotations

import sqlite3
from typing import Optional

from leaktriage.text.fold import FOLD_VERSION

SCHEMA_VERSION = 2

# problems the index itself finds (origin 'index'); text extraction problems carry the codes of
# leaktriage.text (TEXT_CODES: text.encrypted, text.no_text_layer, ...), see problem_code()
INDEX_CODES = {
    "index.bytes_unavailable": ("error", "The message (or attachment) bytes could not be re-read from the dump "
                                         "through its locator; its text is not indexed (header fields are)."),
    "index.bytes_changed": ("error", "The bytes found at the locator do not match the manifest's SHA-256: the dump "
                                     "changed since the scan. The text is not indexed; rescan."),
    "index.text_truncated": ("info", "The message text is longer than the index keeps; the rest is not indexed."),
    "index.analysis_failed": ("error", "A per-message analysis of the index failed on this message (a bug: please "
                                       "report it); the message is indexed without that analysis."),
    "index.text_not_extracted": ("warning", "An attachment's text was not extracted: the first copy of the same "
                                            "content (same SHA-256) could not be read."),
}


def problem_code(code: str) -> tuple:
    """(severity, description) of a code the index writes: INDEX_CODES or leaktriage.text's TEXT_CODES."""
    if code in INDEX_CODES:
        return INDEX_CODES[code]
    from leaktriage.text import TEXT_CODES
    return TEXT_CODES[code]


# The messages table starts with what a reader looks at (Datasette shows columns in this order); the
# digests, the record digest and the text come last. Every message belongs to one email (`emails`: the
# same-email group of the scan, i.e. its canonical_sha256), set when it is inserted; the copies, first
# message and custodians of each email are recomputed after every message is in (leaktriage.search.analysis).
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    date TEXT,
    subject TEXT,
    from_text TEXT,
    to_text TEXT,
    custodian TEXT,
    attachment_count INTEGER NOT NULL DEFAULT 0,
    attachment_names TEXT,
    dkim TEXT,
    risk TEXT,
    text_status TEXT,
    mailbox TEXT,
    cc_text TEXT,
    month TEXT,
    date_raw TEXT,
    from_address TEXT,
    from_name TEXT,
    header_message_id TEXT,
    in_reply_to TEXT,
    source TEXT,
    size INTEGER,
    parts INTEGER,
    problem_codes TEXT,
    attachment_types TEXT,
    thread_id TEXT,
    thread_method TEXT,
    parent TEXT,
    parent_locator TEXT,
    parent_missing INTEGER,
    thread_depth INTEGER,
    thread_key TEXT,
    email_id INTEGER REFERENCES emails(id),
    locator TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    canonical_sha256 TEXT,
    unquoted_sha256 TEXT,
    record_sha1 TEXT,
    body TEXT,
    attachment_text TEXT
);
CREATE INDEX IF NOT EXISTS messages_date ON messages(date);
CREATE INDEX IF NOT EXISTS messages_month ON messages(month);
CREATE INDEX IF NOT EXISTS messages_sha256 ON messages(sha256);
CREATE INDEX IF NOT EXISTS messages_canonical ON messages(canonical_sha256);
CREATE INDEX IF NOT EXISTS messages_custodian ON messages(custodian);
CREATE INDEX IF NOT EXISTS messages_mailbox ON messages(mailbox);
CREATE INDEX IF NOT EXISTS messages_header_message_id ON messages(header_message_id);
CREATE INDEX IF NOT EXISTS messages_in_reply_to ON messages(in_reply_to);
CREATE INDEX IF NOT EXISTS messages_unquoted ON messages(unquoted_sha256);
CREATE INDEX IF NOT EXISTS messages_attachment_count ON messages(attachment_count);
CREATE INDEX IF NOT EXISTS messages_dkim ON messages(dkim);
CREATE INDEX IF NOT EXISTS messages_text_status ON messages(text_status);
CREATE INDEX IF NOT EXISTS messages_email ON messages(email_id, id);
CREATE INDEX IF NOT EXISTS messages_id_email ON messages(id, email_id);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id, date);
CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY,
    first_message INTEGER,
    copies INTEGER NOT NULL DEFAULT 1,
    custodians TEXT,
    mailboxes TEXT,
    key TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS emails_first_message ON emails(first_message);
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
CREATE INDEX IF NOT EXISTS addresses_address_role ON addresses(address, role, message_id);
CREATE INDEX IF NOT EXISTS addresses_domain_role ON addresses(domain, role, message_id);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    filename TEXT,
    type TEXT,
    size INTEGER,
    risk TEXT,
    text_status TEXT,
    text_chars INTEGER,
    text_codes TEXT,
    mismatch TEXT,
    content_type TEXT,
    magic TEXT,
    extension TEXT,
    text_format TEXT,
    text_pages INTEGER,
    inside TEXT,
    part TEXT,
    locator TEXT NOT NULL,
    sha256 TEXT
);
CREATE INDEX IF NOT EXISTS attachments_message ON attachments(message_id);
CREATE INDEX IF NOT EXISTS attachments_sha256 ON attachments(sha256);
CREATE INDEX IF NOT EXISTS attachments_locator ON attachments(locator);
CREATE INDEX IF NOT EXISTS attachments_type_message ON attachments(type, message_id);
CREATE INDEX IF NOT EXISTS attachments_extension_message ON attachments(extension, message_id);
CREATE INDEX IF NOT EXISTS attachments_magic_message ON attachments(magic, message_id);
CREATE INDEX IF NOT EXISTS attachments_content_type_message ON attachments(content_type, message_id);
CREATE INDEX IF NOT EXISTS attachments_risk_message ON attachments(risk, message_id);
CREATE INDEX IF NOT EXISTS attachments_text_status_message ON attachments(text_status, message_id);
CREATE TABLE IF NOT EXISTS problems (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    severity TEXT,
    description TEXT,
    origin TEXT NOT NULL,
    stage TEXT,
    locator TEXT NOT NULL,
    byte_offset INTEGER,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS problems_message ON problems(message_id);
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
CREATE INDEX IF NOT EXISTS findings_code_kind_message ON findings(code, kind, message_id);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    subject, from_text, to_text, cc_text, attachment_names, body, attachment_text,
    content="messages", content_rowid="id", tokenize="unicode61 remove_diacritics 2"
);
CREATE VIEW IF NOT EXISTS inbox AS
    SELECT m.id AS id, m.date AS date, m.subject AS subject, m.from_text AS from_text, m.to_text AS to_text,
           e.custodians AS custodians, e.copies AS copies, m.attachment_count AS attachment_count,
           m.attachment_names AS attachment_names, m.attachment_types AS attachment_types, m.dkim AS dkim,
           m.risk AS risk, m.month AS month, m.locator AS locator
    FROM messages m JOIN emails e ON e.id = m.email_id AND e.first_message = m.id;
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
           count(DISTINCT message_id) AS messages, sum(mismatch IS NOT NULL) AS mismatches,
           sum(text_status IN ('ok', 'partial')) AS with_text
    FROM attachments GROUP BY coalesce(type, '(unknown)');
CREATE VIEW IF NOT EXISTS messages_per_month AS
    SELECT coalesce(month, '(undated)') AS month, count(*) AS messages,
           sum(attachment_count > 0) AS with_attachments,
           count(DISTINCT email_id) AS distinct_emails
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
    "application/x-dosexec": "exe",
    "application/vnd.microsoft.portable-executable": "exe",
    "application/x-msdownload": "exe",
    "application/x-msi": "msi",
    "application/x-executable": "elf",
    "application/x-sharedlib": "elf",
    "application/vnd.ms-word.document.macroenabled.12": "docm",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsm",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12": "pptm",
    "text/x-shellscript": "sh",
    "application/javascript": "js",
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



def connect(db_path: str) -> sqlite3.Connection:
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA foreign_keys = ON")
    return con


def init_db(con: sqlite3.Connection, extra_schema=()) -> bool:
    """Create the schema; returns True when an existing incompatible index was wiped."""
    wiped = False
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        meta = None
    if meta is not None and (meta.get("schema_version") != str(SCHEMA_VERSION)
                             or meta.get("fold_version") != str(FOLD_VERSION)):
        con.execute("PRAGMA foreign_keys = OFF")
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall():
            con.execute("DROP VIEW IF EXISTS \"%s\"" % name)
        con.execute("DROP TABLE IF EXISTS messages_fts")
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                   "'sqlite_%'").fetchall():
            con.execute("DROP TABLE IF EXISTS \"%s\"" % name)
        con.execute("PRAGMA foreign_keys = ON")
        wiped = True
    con.executescript(SCHEMA)
    for sql in extra_schema:
        con.executescript(sql)
    return wiped
