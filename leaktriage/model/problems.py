"""The registry of problem codes: one stable code per kind of defect or failure.

Each code maps to (severity, stage, description). Severity: "info" (noteworthy, nothing lost),
"warning" (data was repaired or guessed: read the record), "error" (something could not be read;
the locator and offset say exactly what). The stage tells which step of the data flow found it.
The registry is CORE_CODES plus the tables of the container readers (model/container_codes.py),
the authenticity stage (model/auth_codes.py) and the comparison of copies
(model/conversation_codes.py), combined here, so that docs/manifest.md and
the JSON Schema list every code.
"""
from __future__ import annotations

from typing import Dict, Tuple

from leaktriage.model.auth_codes import CODES as AUTH_CODES
from leaktriage.model.container_codes import CODES as CONTAINER_CODES
from leaktriage.model.conversation_codes import CODES as CONVERSATION_CODES

STAGES = ("walk", "sniff", "container", "mbox", "parse", "decode", "charset", "auth", "limit")

CORE_CODES: Dict[str, Tuple[str, str, str]] = {
    # walk
    "walk.unreadable": ("error", "walk", "A file or directory could not be stat'ed, opened, listed or read (permissions, I/O error; detail.errno); its record has status failed, and what an unlisted directory holds is not in the manifest."),
    "walk.symlink": ("info", "walk", "A symbolic link: recorded with its target, never followed."),
    "walk.special_file": ("info", "walk", "A FIFO, socket or device file: recorded, never opened."),
    "walk.vanished": ("error", "walk", "A file disappeared between listing and reading."),
    "walk.changed": ("error", "walk", "A file changed during the scan: its size when opened differs from its size when the walk listed it (detail.size_listed: e.g. truncated meanwhile, and a reader killed by SIGBUS was retried on the shorter file), or its size or mtime changed while it was read. The bytes it held when opened (its size then) were read; growth is not followed (detail: size_before, size_after, bytes_read)."),
    "walk.name_not_utf8": ("warning", "walk", "A file name is not valid UTF-8; the locator keeps the raw bytes as %XX."),
    "walk.empty_file": ("info", "walk", "A 0-byte file."),
    "walk.too_large": ("error", "limit", "A file is larger than the configured maximum and was only hashed."),
    # sniff
    "sniff.extension_mismatch": ("info", "sniff", "A mail-looking extension (.eml, .msg, .mbox) on content that is not mail, or the reverse."),
    "sniff.not_mail": ("info", "sniff", "A file inside a mailbox folder that is not an email."),
    # Maildir
    "maildir.tmp": ("warning", "sniff", "A file in a Maildir tmp/ folder: a delivery that had not finished, possibly incomplete."),
    # mbox
    "mbox.junk_before_first": ("warning", "mbox", "Bytes before the first 'From ' separator line of an mbox."),
    "mbox.truncated": ("error", "mbox", "The last message of an mbox ends in the middle of its header block or before its Content-Length."),
    "mbox.content_length_mismatch": ("warning", "mbox", "A Content-Length header does not point at a 'From ' line (or the end of the file); it was ignored."),
    "mbox.unquoted_from": ("warning", "mbox", "A body line starting with 'From ' that is not a separator (unquoted mboxo/mboxcl body line); kept in the message."),
    "mbox.empty_message": ("warning", "mbox", "A 'From ' separator followed by no message."),
    # parse: header block
    "header.no_separator": ("warning", "parse", "No blank line ends the header block; the first line that is not a header starts the body (MissingHeaderBodySeparatorDefect)."),
    "header.invalid_line": ("warning", "parse", "A line in the header block that is neither a field nor a continuation, followed by header fields up to the blank line: read past, as mail readers do, and the fields after it kept (detail.line shows it; InvalidHeaderDefect)."),
    "header.leading_continuation": ("warning", "parse", "The header block starts with a continuation line (FirstHeaderLineIsContinuationDefect)."),
    "header.8bit": ("info", "charset", "A header holds raw 8-bit bytes (not RFC 2047 encoded); the charset used is recorded."),
    "header.encoded_word_invalid": ("warning", "charset", "An RFC 2047 encoded-word could not be decoded as declared (bad base64/QP or charset); decoded leniently."),
    "header.encoded_word_unknown_charset": ("warning", "charset", "An RFC 2047 encoded-word names an unknown charset."),
    "header.date_invalid": ("warning", "parse", "The Date header could not be parsed."),
    "header.date_implausible": ("warning", "parse", "The Date header parses to a year before 1980 or after 2100 (a broken or forged clock)."),
    "header.date_missing": ("info", "parse", "The message has no Date header."),
    "header.duplicate_singleton": ("warning", "parse", "A header that must appear at most once (From, To, Subject, Date, Message-ID, ...) appears several times."),
    "header.address_invalid": ("warning", "parse", "An address header could not be parsed completely (ObsoleteHeaderDefect/InvalidHeaderDefect)."),
    "header.message_id_invalid": ("info", "parse", "Message-ID is missing its angle brackets or is otherwise not RFC 5322 syntax."),
    "header.too_long": ("warning", "limit", "A header field value (or the envelope 'From ' line of a message file) is longer than 64 KiB: only its first 64 KiB are kept and decoded (detail.kept, detail.not_kept bytes); the record's canonical digest still covers the whole value."),
    "header.nul_bytes": ("warning", "parse", "NUL bytes in the header block."),
    # parse: MIME structure
    "mime.no_boundary": ("error", "parse", "A multipart part has no boundary parameter; its body is kept as one leaf (NoBoundaryInMultipartDefect)."),
    "mime.start_boundary_not_found": ("error", "parse", "The boundary of a multipart never appears; the whole body is its preamble (StartBoundaryNotFoundDefect)."),
    "mime.close_boundary_not_found": ("warning", "parse", "A multipart has no closing boundary line (CloseBoundaryNotFoundDefect)."),
    "mime.boundary_reused": ("warning", "parse", "A closing boundary line is followed by more parts with the same boundary (a nested multipart reused its parent's boundary); the later parts are read."),
    "mime.preamble_data": ("info", "parse", "The preamble of a multipart holds data beyond the usual 'This is a multi-part message' text (a known hiding place)."),
    "mime.epilogue_data": ("info", "parse", "The epilogue of a multipart holds data (a known hiding place)."),
    "mime.depth_limit": ("error", "limit", "MIME nesting deeper than the limit; the deeper part is kept as one opaque leaf."),
    "mime.parts_limit": ("error", "limit", "More MIME parts than the limit; the rest of the message is kept as one opaque leaf."),
    "mime.invalid_content_type": ("warning", "parse", "A Content-Type value that is not type/subtype; text/plain was assumed (InvalidHeaderDefect)."),
    "mime.multipart_not_multipart": ("warning", "parse", "A multipart content type with a transfer encoding other than 7bit/8bit/binary (InvalidMultipartContentTransferEncodingDefect)."),
    "mime.message_not_message": ("warning", "parse", "A message/rfc822 part whose body does not look like an email."),
    "mime.empty_message": ("warning", "parse", "A message with no header fields at all."),
    # decode
    "cte.unknown": ("warning", "decode", "An unknown Content-Transfer-Encoding; the body was kept as it is."),
    "base64.invalid_characters": ("warning", "decode", "Characters outside the base64 alphabet in a base64 body; they were skipped."),
    "base64.bad_padding": ("warning", "decode", "Base64 with missing or misplaced '=' padding (InvalidBase64PaddingDefect)."),
    "base64.data_after_padding": ("warning", "decode", "Base64 data after the final '=' padding: decoded as a second block."),
    "base64.truncated": ("warning", "decode", "A base64 body whose length is not a multiple of 4 (InvalidBase64LengthDefect); the trailing fragment was dropped or padded."),
    "qp.invalid_escape": ("info", "decode", "An '=' in a quoted-printable body not followed by two hex digits; kept as is."),
    "uu.invalid": ("warning", "decode", "A uuencoded block that could not be decoded completely."),
    "uu.no_end": ("warning", "decode", "A uuencoded block without its 'end' line."),
    # charset
    "charset.unknown": ("warning", "charset", "A declared charset that no codec knows; another was chosen (see charset_source)."),
    "charset.mislabelled": ("warning", "charset", "The declared charset does not decode the text, or the text is valid UTF-8 under a single-byte label; another charset was detected and used (the part's charset_source says which)."),
    "charset.replaced": ("warning", "charset", "Some bytes could not be decoded in any charset tried and were replaced (replaced_bytes says how many)."),
    "charset.undeclared_8bit": ("info", "charset", "8-bit text with no declared charset; the charset was detected."),
    # issue #14 (trust), mail side
    "limit.header_block": ("error", "limit", "A header block larger than leaktriage keeps: after 1 MiB of values (detail.block_keep) each later value kept only its first 1 KiB (detail.values_cut, detail.bytes_not_kept), and/or after 2000 fields (detail.max_fields) the rest of the block was not read (detail.lines_not_read, detail.bytes_not_read): fields there are not in the record nor in its canonical digest (and a Date there is not reported missing). The sha256 digests still cover every byte."),
    "limit.value_cut": ("warning", "limit", "A value taken from the mail is longer than a record keeps: detail.field names it (mbox.marker: a 'From ' line over 1 KiB; attachment_names: over 1000 names or names over 1024 characters in the message record, each part record still has its own) and says how much was not kept."),
    "header.bom": ("info", "parse", "A UTF-8 byte-order mark before the first header field (an editor's artefact); the header block was read from after it."),
    "hqx.invalid": ("warning", "decode", "A BinHex 4.0 file that could not be decoded completely: no closing ':', characters outside its alphabet (skipped), no valid header, a fork shorter than its declared length or a missing CRC (detail.reason); what was decoded is kept."),
    "hqx.crc_mismatch": ("error", "decode", "A CRC of a BinHex 4.0 file does not match (detail.part: header, data or rsrc fork): the bytes are kept as decoded but are damaged."),
    "hqx.too_large": ("error", "limit", "A BinHex 4.0 file declaring forks of more than 256 MiB in all (detail.max): its forks were not decoded."),
    "uu.too_many": ("error", "limit", "More uuencoded files in one text part than the limit (1000, detail.max): the first ones were decoded; the rest, from the 'begin' line at this record's offset (in the decoded text of the part), were not."),
    "charset.refused": ("warning", "charset", "A charset label (of a text part, an RFC 2047 encoded-word or an RFC 2231 parameter) names a Python codec that is not a text encoding (rot13, base64, hex, zlib, bz2, uu, quopri, idna, punycode, undefined, unicode-escape, charmap...): it was not used; the text was read as if the label were unknown (detail.declared or detail.header says where)."),
    # types
    "type.mismatch_declared": ("info", "parse", "The detected type of a part's content contradicts its declared Content-Type."),
    "type.mismatch_extension": ("warning", "parse", "The detected type of a part's content contradicts its file name's extension."),
    # containers (generic)
    "container.unsupported": ("error", "container", "A container format leaktriage cannot open here; its bytes are hashed but its content is not read."),
    # limits / internal
    "limit.auth_skipped": ("info", "limit", "DKIM/ARC checks were skipped for a message larger than the limit (64 MiB)."),
    "limit.depth": ("error", "limit", "Nesting deeper than the depth limit (archive in archive in message ...); this item was hashed but not opened."),
    "limit.time": ("error", "limit", "A message took longer than the per-item time budget (--item-timeout); it was skipped, its bytes are hashed in its container's record and this record gives their range."),
    # issue #14 (Trust): what a top-level file can plausibly hold, and walk errors
    "limit.members": ("error", "limit", "A top-level file whose containers, all nesting levels together, list more members than it can plausibly hold (at least 2,000, or one per 16 bytes of the file: a nested-archive bomb of tiny members costs time, not bytes); this container's listing stopped: detail.first_not_listed and every member after it were not listed or opened."),
    "internal.worker_died": ("error", "walk", "The process reading this file died twice (a signal such as SIGBUS when a memory-mapped file is truncated while it is read, or the system's out-of-memory killer); the file is recorded as failed and nothing inside it is listed."),
    "internal.error": ("error", "parse", "An unexpected error inside leaktriage while processing this item; the item's bytes are still hashed and recorded. Please report it."),
}

def combine(*tables: Dict[str, Tuple[str, str, str]]) -> Dict[str, Tuple[str, str, str]]:
    """One registry from several tables: every code once, with a known severity and stage."""
    out: Dict[str, Tuple[str, str, str]] = {}
    for table in tables:
        for code, spec in table.items():
            if code in out and out[code] != spec:
                raise ValueError("problem code %s defined twice" % code)
            if spec[0] not in ("info", "warning", "error") or spec[1] not in STAGES:
                raise ValueError("bad spec for problem code %s: %r" % (code, spec))
            out[code] = spec
    return out


CODES: Dict[str, Tuple[str, str, str]] = combine(CORE_CODES, CONTAINER_CODES, AUTH_CODES, CONVERSATION_CODES)


def severity(code: str) -> str:
    return CODES[code][0]


def stage(code: str) -> str:
    return CODES[code][1]


# Python email-package defect classes that correspond to our codes (for users comparing tools).
DEFECTS = {
    "header.no_separator": "MissingHeaderBodySeparatorDefect",
    "header.invalid_line": "InvalidHeaderDefect",
    "header.leading_continuation": "FirstHeaderLineIsContinuationDefect",
    "mime.no_boundary": "NoBoundaryInMultipartDefect",
    "mime.start_boundary_not_found": "StartBoundaryNotFoundDefect",
    "mime.close_boundary_not_found": "CloseBoundaryNotFoundDefect",
    "mime.multipart_not_multipart": "InvalidMultipartContentTransferEncodingDefect",
    "mime.invalid_content_type": "InvalidHeaderDefect",
    "base64.bad_padding": "InvalidBase64PaddingDefect",
    "base64.invalid_characters": "InvalidBase64CharactersDefect",
    "base64.truncated": "InvalidBase64LengthDefect",
    "header.address_invalid": "InvalidHeaderDefect",
}


def problem_record(locator: str, code: str, message: str = None, offset: int = None, length: int = None,
                   detail: dict = None) -> dict:
    """A `problem` record for `code` at `locator` (the code must be registered)."""
    from leaktriage.model.records import record
    sev, stg, desc = CODES.get(code) or ("error", "parse", "Unregistered problem code (please report).")
    return record("problem", locator, code=code, severity=sev, stage=stg, message=message or desc,
                  offset=offset, length=length, defect=DEFECTS.get(code), detail=detail or None)
