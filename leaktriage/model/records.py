"""The one place that defines the manifest: record kinds, their fields, the JSON Schema, serialisation.

Every record is a JSON object with `record` (its kind), `v` (schema version) and `locator`.
Fields whose value is unknown are omitted rather than written as null. The JSON Schema
(`leaktriage schema`) and docs/manifest.md are generated from FIELDS below; a test checks that
every field is documented and that real scan output validates.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Tuple

SCHEMA_VERSION = 1

STRING = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
HEX = {"type": "string", "pattern": "^[0-9a-f]+$"}
ISO_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"}
STRINGS = {"type": "array", "items": STRING}
OBJECT = {"type": "object"}
ADDRESSES = {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                        "properties": {"name": STRING, "address": STRING, "group": STRING}}}
BYTE_RANGE = {"type": "object", "additionalProperties": False,
              "properties": {"offset": COUNT, "length": COUNT, "sha256": HEX, "data": BOOLEAN}}
HEADER_FIELD = {"type": "object", "additionalProperties": False, "required": ["name"],
                "properties": {"name": STRING, "raw": STRING, "raw_b64": STRING, "value": STRING}}

COMMON: Dict[str, Tuple[dict, str]] = {
    "record": (STRING, "Record kind: file, message, part, problem, duplicate_group, mailbox, summary (run records live in the sidecar)."),
    "v": (COUNT, "Manifest schema version (%d)." % SCHEMA_VERSION),
    "locator": (STRING, "Exact, stable name of the item (see 'Locators'); `leaktriage show` takes it."),
}

DIGESTS: Dict[str, Tuple[dict, str]] = {
    "sha256": (HEX, "SHA-256 of the item's bytes (always)."),
    "md5": (HEX, "MD5 of the same bytes (only with --hash md5)."),
    "sha1": (HEX, "SHA-1 of the same bytes (only with --hash sha1)."),
}

FIELDS: Dict[str, Dict[str, Tuple[dict, str]]] = {
    "file": {
        "parent": (STRING, "Locator of the container this file was found in (absent for files on disk)."),
        "path": (STRING, "Path of the file: relative to the dump root for files on disk, the member name inside an archive. Bytes that are not UTF-8 are shown as U+FFFD (the locator keeps them)."),
        "name_raw_b64": (STRING, "Base64 of the raw name bytes when the name is not valid UTF-8."),
        "entry": ({"enum": ["file", "symlink", "fifo", "socket", "block-device", "char-device", "other"]},
                  "What the directory entry is. Only regular files are opened."),
        "symlink_target": (STRING, "Target of a symbolic link (never followed)."),
        "size": (COUNT, "Size in bytes."),
        **DIGESTS,
        "magic": (STRING, "MIME type detected from the content: libmagic on the first 64 KiB, except that an email file is recognised by leaktriage itself (message/rfc822) because libmagic is slow on text."),
        "kind": (STRING, "Kind sniffed from the content (not the name): message, mbox, emlx, zip, tar, gzip, bzip2, xz, 7z, rar, msg, ole, pst, tnef, item (a non-mail Outlook item), document (OOXML/OpenDocument: a zip that is a document, not opened as an archive), empty, other."),
        "sniffed_by": (STRING, "What decided the kind: header-block, from-line, signature (magic numbers), signature-tail (a zip end record at the end), structure, container (the container said so), libmagic, empty."),
        "maildir": ({"type": "object", "additionalProperties": False,
                     "properties": {"folder": STRING, "subdir": STRING, "flags": STRING, "info": STRING}},
                    "For a file in a Maildir: the Maildir folder, cur/new/tmp, the flags (P R S T D F) and the raw info suffix."),
        "custodian": (STRING, "Person the file belongs to, derived from the dump layout: the first folder of its path, or the name of a top-level archive without its suffix; when the dump root is itself a Maildir, the root folder's own name. Absent for a loose file at the dump root (and for a one-file dump that is not an archive)."),
        "messages": (COUNT, "Number of messages found directly in this file (mbox, message file, reconstructed)."),
        "mtime": (STRING, "Modification time recorded inside an archive for a member, ISO-8601: UTC with 'Z' when the archive says so; zip (MS-DOS) times carry no zone and are written without one."),
        "compressed_size": (COUNT, "Compressed size of an archive member."),
        "crc32": (HEX, "CRC-32 stored in the archive for this member."),
        "encrypted": (BOOLEAN, "True when an archive member is encrypted (its content is not read)."),
        "name_flags": (STRINGS, "Dangerous traits of an archive member name: traversal, absolute, drive, nul, control."),
        "container_meta": (OBJECT, "Other facts a container reader recorded about this member."),
        "status": ({"enum": ["ok", "partial", "failed"]}, "ok: read completely; partial: read with errors; failed: could not be read (see its problems)."),
    },
    "message": {
        "parent": (STRING, "Locator of what holds the message: its file, mbox, archive member or MIME part."),
        "source": (STRING, "Where the message came from: file, mbox, maildir, rfc822 (attached message/rfc822), attachment (an attached file that is an email), msg, pst, emlx, archive."),
        "reconstructed": (BOOLEAN, "True when leaktriage built the message bytes from Outlook properties: hashes are then of leaktriage's reconstruction, not of an original."),
        "custodian": (STRING, "Person the mailbox belongs to (from the dump layout)."),
        "mailbox": (STRING, "Mailbox the message is stored in: folder, Maildir folder, mbox file or archive folder (a locator prefix)."),
        "offset": (COUNT, "Byte offset of the message in its parent's bytes (mbox: first header byte, after the From line)."),
        "length": (COUNT, "Length in bytes of the stored message."),
        **DIGESTS,
        "unquoted_sha256": (HEX, "mbox only, when '>From ' quoting was undone: SHA-256 of the message as it was sent (what dedup and DKIM use)."),
        "canonical_sha256": (HEX, "Content hash ignoring transport-only headers and line endings: the Sent copy and the Inbox copy of one email share it."),
        "mbox": ({"type": "object", "additionalProperties": False,
                  "properties": {"marker_offset": COUNT, "marker": STRING, "variant": STRING, "unquoted_lines": COUNT,
                                 "content_length": COUNT, "content_length_used": BOOLEAN}},
                 "mbox facts: offset and text of the 'From ' line, the quoting variant (mboxrd, mboxo, mboxcl2), lines un-quoted, Content-Length honoured."),
        "maildir": ({"type": "object", "additionalProperties": False,
                     "properties": {"folder": STRING, "subdir": STRING, "flags": STRING, "info": STRING}}, "Maildir folder and flags (as on the file record)."),
        "container_meta": (OBJECT, "Facts from a container about the message (Outlook folder, delivery time, plist flags, ...)."),
        "line_endings": ({"enum": ["crlf", "lf", "cr", "mixed", "none"]}, "Line endings of the stored bytes."),
        "header_length": (COUNT, "Bytes of the header block (up to and including the blank separator line)."),
        "envelope": (STRING, "A leading 'From ' envelope line inside a message file (not a header)."),
        "headers": ({"type": "array", "items": HEADER_FIELD},
                    "Every header field in order: name, raw value (folding kept; raw_b64 when not UTF-8), and value when decoding changed it (RFC 2047, 8-bit)."),
        "from": (ADDRESSES, "From addresses (name and address; RFC 2047 names decoded)."),
        "sender": (ADDRESSES, "Sender addresses."),
        "reply_to": (ADDRESSES, "Reply-To addresses."),
        "to": (ADDRESSES, "To addresses (groups keep their group name)."),
        "cc": (ADDRESSES, "Cc addresses."),
        "bcc": (ADDRESSES, "Bcc addresses."),
        "subject": (STRING, "Decoded Subject."),
        "date": (ISO_TIME, "Date header as UTC ISO-8601."),
        "date_raw": (STRING, "Date header as written."),
        "date_tz": (STRING, "Zone offset written in the Date header (+HHMM)."),
        "message_id": (STRING, "Message-ID as written (angle brackets kept)."),
        "in_reply_to": (STRINGS, "Message-IDs in In-Reply-To."),
        "references": (STRINGS, "Message-IDs in References, in order."),
        "parts": (COUNT, "Number of MIME entities in this message (not counting entities of attached messages)."),
        "attachments": (COUNT, "Number of attachments (leaf parts that are not the message text, attached messages, uuencoded files)."),
        "attachment_names": (STRINGS, "File names of the attachments, in part order."),
        "problem_codes": (STRINGS, "Problem codes found in this message or its parts (sorted, unique)."),
        "dkim": ({"type": "array", "items": OBJECT}, "DKIM verdicts, one per DKIM-Signature: verdict (pass, pass-weak-key, body-hash-mismatch, signature-mismatch, no-key, expired, malformed, unsupported-algorithm), the d= s= a= c= h= l= t= x= i= tags, the key size and where the key came from (see docs/authenticity.md)."),
        "dkim_summary": ({"enum": ["pass", "pass-weak-key", "fail", "expired", "no-key", "unverifiable"]}, "One word for the message's DKIM signatures (absent when unsigned)."),
        "arc": (OBJECT, "ARC chain verdict and sets (absent when the message has no ARC headers)."),
        "received": ({"type": "array", "items": OBJECT}, "Received hops, newest first: from, by, with, id, for, date, IPs."),
        "received_at": (ISO_TIME, "When the message was received: the time of the newest Received hop (what DKIM expiry is judged against)."),
        "hidden_timestamps": ({"type": "array", "items": OBJECT}, "Times hidden in Gmail MIME boundaries, X-Received, Outlook Thread-Index, ..., each with its source and the time it encodes."),
        "indicators": ({"type": "array", "items": OBJECT}, "Tampering and coverage indicators (code, severity, evidence, explanation). See docs/authenticity.md."),
    },
    "part": {
        "message": (STRING, "Locator of the message this MIME entity belongs to."),
        "path": (STRING, "Entity path: '1' is the message's root entity, children of P are P.1, P.2, ..."),
        "depth": (COUNT, "Nesting depth inside the message (root = 0)."),
        "content_type": (STRING, "Effective type/subtype (lower case): the declared one, or the RFC 2045 default."),
        "content_type_raw": (STRING, "Content-Type value as written (unfolded)."),
        "params": ({"type": "object", "additionalProperties": STRING}, "Content-Type parameters, decoded (RFC 2231, RFC 2047)."),
        "boundary": (STRING, "Multipart boundary."),
        "children": (COUNT, "Number of child entities (multipart)."),
        "preamble": (BYTE_RANGE, "Multipart preamble: offset/length in the message, SHA-256, and data=true when it holds more than the usual notice."),
        "epilogue": (BYTE_RANGE, "Multipart epilogue, as preamble."),
        "cte": (STRING, "Content-Transfer-Encoding as declared (lower case)."),
        "decoder": (STRING, "Which transfer decoding produced the bytes: identity, base64, base64-repaired, quoted-printable, uuencode, binhex."),
        "disposition": (STRING, "Content-Disposition type (lower case)."),
        "disposition_raw": (STRING, "Content-Disposition as written (unfolded)."),
        "filename": (STRING, "Decoded file name (RFC 2231 / RFC 2047)."),
        "filename_raw": (STRING, "File name parameter as written."),
        "filename_from": (STRING, "Which parameter gave the name: filename, name, uuencode or binhex."),
        "content_id": (STRING, "Content-ID."),
        "description": (STRING, "Decoded Content-Description."),
        "charset_declared": (STRING, "Charset declared in Content-Type (text parts)."),
        "charset": (STRING, "Charset actually used to read the text."),
        "charset_source": ({"enum": ["bom", "declared", "default", "detected", "fallback"]},
                           "How the charset was chosen: byte-order mark, as declared, the us-ascii default, detected (utf-8 check or chardet), or fallback with replacement."),
        "charset_method": (STRING, "For detected charsets: utf-8 or chardet."),
        "charset_confidence": (NUMBER, "chardet's confidence for a detected charset."),
        "replaced_bytes": (COUNT, "Bytes that could not be decoded and were replaced (0 when none)."),
        "offset": (COUNT, "Offset of the entity's first header byte within the message bytes."),
        "header_length": (COUNT, "Bytes of the entity's header block."),
        "body_offset": (COUNT, "Offset of the encoded body within the message bytes."),
        "body_length": (COUNT, "Length of the encoded body."),
        "size": (COUNT, "Size of the decoded body in bytes."),
        **DIGESTS,
        "magic": (STRING, "MIME type detected from the decoded body: libmagic, except for parts declared text/plain, text/html or message/rfc822 whose bytes leaktriage recognises as plain text, HTML or an email (libmagic is slow on text); anything else, binary content in a text part included, goes to libmagic."),
        "mismatch": (STRINGS, "declared-type and/or extension when the detected type contradicts them."),
        "attachment": (BOOLEAN, "True for attachments (not the message text)."),
        "uu_offset": (COUNT, "For a uuencoded file: offset of its 'begin' line in the decoded text of its entity."),
        "binhex": ({"type": "object", "additionalProperties": False,
                    "properties": {"fork": {"enum": ["data", "rsrc"]}, "offset": COUNT, "name": STRING,
                                   "type": STRING, "creator": STRING, "flags": COUNT}},
                   "For a fork of a BinHex 4.0 file (application/mac-binhex40) decoded from its entity: which fork (data, or rsrc: the resource fork), the offset of the opening ':' in the decoded body of the entity, the Macintosh file name, type and creator codes and Finder flags."),
        "docmeta": (OBJECT, "Metadata inside an attached document: OOXML docProps, OLE SummaryInformation or PDF Info/XMP (author, last modified by, created, modified, application, producer, ...)."),
    },
    "problem": {
        "code": (STRING, "Stable code (see 'Problem codes')."),
        "severity": ({"enum": ["info", "warning", "error"]}, "info: noteworthy; warning: repaired or guessed; error: something could not be read."),
        "stage": (STRING, "Step of the data flow that found it: walk, sniff, container, mbox, parse, decode, charset, auth, limit."),
        "message": (STRING, "What happened, for people."),
        "offset": (COUNT, "Byte offset of the problem within the item named by the locator (when known)."),
        "length": (COUNT, "Length of the affected byte range (when known)."),
        "defect": (STRING, "The equivalent defect class of Python's email package, when there is one."),
        "detail": (OBJECT, "Machine-readable details."),
    },
    "duplicate_group": {
        "kind": ({"enum": ["exact", "canonical"]}, "exact: the same bytes; canonical: the same email, transport headers and line endings ignored."),
        "digest": (HEX, "The shared SHA-256 (message sha256 or canonical_sha256)."),
        "count": (COUNT, "Number of messages in the group."),
        "members": (STRINGS, "Locators of the messages, sorted."),
        "custodians": (STRINGS, "Custodians holding a copy, sorted."),
    },
    "mailbox": {
        "custodian": (STRING, "The custodian (top-level folder of the dump); null for loose files at the dump root."),
        "messages": (COUNT, "Messages of the custodian (every source: files, mbox, archives, Outlook, attached)."),
        "documents": (COUNT, "Attachments with document metadata (docmeta) in those messages."),
        "distinct_documents": (COUNT, "The same, counting each SHA-256 once."),
        "scripts": (OBJECT, "Unicode script -> number of names written in it over the mailbox: custodian, subjects, correspondents' names and address local parts. What auth.doc_author_foreign_script compares with."),
        "indicators": ({"type": "array", "items": OBJECT}, "Mailbox-wide document indicators (auth.doc_author_foreign_script, auth.mailbox_docs_batch_modified); evidence names the documents and the messages carrying them. See docs/authenticity.md."),
    },
    "summary": {
        "files": (OBJECT, "Files: total, bytes, by_kind, non_mail."),
        "messages": (OBJECT, "Messages: total, by_source, reconstructed, date_min, date_max, undated."),
        "custodians": (OBJECT, "Messages per custodian."),
        "mailboxes": (OBJECT, "Messages per mailbox."),
        "parts": (COUNT, "MIME entities in all messages."),
        "attachments": (OBJECT, "Attachments: total, bytes, unique (by SHA-256), by_type (libmagic), mismatches."),
        "duplicates": (OBJECT, "Duplicate groups and the messages in them, exact and canonical."),
        "problems": (OBJECT, "Problem counts: total, by_code, by_severity."),
        "authenticity": (OBJECT, "DKIM and tampering totals: signed_messages, verified_messages (the 'N of M verified' figure), by_summary, signature_verdicts, by_domain, missing_keys (selector._domainkey.domain names to look for), indicators by code."),
        "options": (OBJECT, "Scan options that change the manifest (digests, limits)."),
        "tool": (OBJECT, "leaktriage and schema version."),
    },
}

RECORD_DESCRIPTIONS = {
    "file": "Every directory entry of the dump, every archive member and every decompressed stream.",
    "message": "Every email: loose files, Maildir, mbox messages, attached messages, Outlook items, archive members.",
    "part": "Every MIME entity of every message (and every uuencoded file found in a text part, every fork of a BinHex file).",
    "problem": "Every defect or failure, at its exact location. Nothing is dropped silently.",
    "duplicate_group": "Messages stored more than once (written after all messages, sorted by digest).",
    "mailbox": "One per custodian, after the duplicate groups (sorted by custodian): counts and the document indicators that need the whole mailbox.",
    "summary": "Totals of the whole scan (the last record).",
}

REQUIRED = {
    "file": ["entry", "path"],
    "message": ["source", "length", "sha256", "canonical_sha256"],
    "part": ["message", "path", "content_type"],
    "problem": ["code", "severity", "stage", "message"],
    "duplicate_group": ["kind", "digest", "count", "members"],
    "mailbox": ["messages", "documents", "scripts"],
    "summary": ["files", "messages", "problems"],
}


def is_entity(part: Dict[str, Any]) -> bool:
    """True for a part record that is a MIME entity, False for a file decoded from inside one
    (a uuencoded file, a fork of a BinHex file): those share their entity's path."""
    return "uu_offset" not in part and "binhex" not in part


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of one manifest line."""
    variants = []
    for kind, fields in FIELDS.items():
        props = {"record": {"const": kind}, "v": {"const": SCHEMA_VERSION}, "locator": STRING}
        for name, (schema, desc) in fields.items():
            props[name] = dict(schema, description=desc)
        variants.append({
            "title": kind,
            "description": RECORD_DESCRIPTIONS[kind],
            "type": "object",
            "additionalProperties": False,
            "required": ["record", "v", "locator"] + REQUIRED[kind],
            "properties": props,
        })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://leaktriage.invalid/schema/manifest-v%d.json" % SCHEMA_VERSION,
        "title": "leaktriage manifest record (one JSON Lines line)",
        "oneOf": variants,
    }


def record(_kind: str, _locator: str, **fields: Any) -> Dict[str, Any]:
    """Build a record, dropping unknown (None) values."""
    rec = {"record": _kind, "v": SCHEMA_VERSION, "locator": _locator}
    for k, v in fields.items():
        if v is not None:
            rec[k] = v
    return rec


def _scrub(obj):
    """Replace lone surrogates (undecodable bytes carried as surrogate escapes) with U+FFFD."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(obj) else obj
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


# one encoder for every record (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def dumps(rec: Dict[str, Any]) -> str:
    """The one serialisation of a record: sorted keys, UTF-8, no spaces, one line (None dropped)."""
    if None in rec.values():
        rec = {k: v for k, v in rec.items() if v is not None}
    text = _ENCODER.encode(rec)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _ENCODER.encode(_scrub(rec))
    return text
