"""The search database's schema (SQLite + FTS5) and the names it uses for types.

Tables (see docs/search.md): messages, addresses, attachments, problems, findings, meta, and the
FTS5 table messages_fts (external content = messages, so Datasette and sqlite-utils recognise it).
Views: correspondents, attachments_by_type, messages_per_month.
"""
from __future__ import annotations

import sqlite3
from typing import Optional

from leaktriage.text.fold import FOLD_VERSION

SCHEMA_VERSION = 1

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



def connect(db_path: str) -> sqlite3.Connection:
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA foreign_keys = ON")
    return con


def init_db(con: sqlite3.Connection) -> bool:
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
