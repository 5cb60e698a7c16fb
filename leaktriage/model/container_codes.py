"""Problem codes of the container readers (archives, Outlook, TNEF, emlx).

Each code maps to (severity, stage, description) like problems.CORE_CODES; stage is "container"
(a defect of the container) or "limit" (a safety limit stopped the reader). The registry
(leaktriage.model.problems) includes this table.

Archive formats share a family of codes, one per format prefix (zip, tar, gzip, bzip2, xz, 7z,
rar), generated below so that every format reports the same situations under its own prefix.
"""
from __future__ import annotations

from typing import Dict, Tuple

ARCHIVE_PREFIXES = ("zip", "tar", "7z", "rar")
STREAM_PREFIXES = ("gzip", "bzip2", "xz")

CODES: Dict[str, Tuple[str, str, str]] = {}


def _add(code: str, severity: str, stage: str, text: str) -> None:
    CODES[code] = (severity, stage, text)


# --- families shared by every archive format (zip, tar, 7z, rar) -------------------------------
for _p in ARCHIVE_PREFIXES:
    _add(_p + ".damaged", "error", "container",
         "The archive structure is damaged; the members that could be read were read, the rest is lost (detail says where reading stopped).")
    _add(_p + ".member_unreadable", "error", "container",
         "One member could not be read (bad header, unsupported method, library error); its record has no content.")
    _add(_p + ".member_truncated", "error", "container",
         "A member's data ends before its declared size (truncated archive); the bytes that exist were kept and meta.truncated is set.")
    _add(_p + ".encrypted", "warning", "container",
         "An encrypted member: listed with its name and sizes, content not decrypted (no password is ever tried).")
    _add(_p + ".suspicious_name", "warning", "container",
         "A member name with '..', an absolute path, a drive letter, a NUL byte or control characters; recorded verbatim, flagged in meta.name_flags, never used as a path.")
    _add(_p + ".duplicate_name", "warning", "container",
         "Two members share one name; the later ones get '%00<n>' appended to their locator segment (meta.duplicate = n).")
    _add(_p + ".member_too_large", "error", "limit",
         "A member expands beyond max_member_size; expansion stopped there and the member has no content.")
    _add(_p + ".total_exceeded", "error", "limit",
         "The top-level file's expansion budget is spent: max_total_expanded bytes expanded, or (detail.max_total_ratio) its decompressed bytes, all nesting levels together, passed max_total_ratio times its own size (at least 64 MiB); this member was not expanded, nor are later ones.")
    _add(_p + ".ratio_exceeded", "error", "limit",
         "A member expands more than max_ratio times its compressed size (zip bomb); expansion stopped and the member has no content.")
    _add(_p + ".too_many_members", "error", "limit",
         "The archive has more members than max_members; the rest were not listed.")

# --- single-stream compressors (gzip, bzip2, xz) ------------------------------------------------
for _p in STREAM_PREFIXES:
    _add(_p + ".truncated", "error", "container",
         "The compressed stream ends early or is corrupt part-way; the bytes decompressed before that point were kept (meta.truncated).")
    _add(_p + ".damaged", "error", "container",
         "The stream could not be decompressed at all (bad header or corrupt data at the start).")
    _add(_p + ".trailing_data", "warning", "container",
         "Bytes after the end of the compressed stream(s) that are not another stream; not decompressed (detail.offset, length).")
    _add(_p + ".member_too_large", "error", "limit",
         "The stream expands beyond max_member_size; decompression stopped there and the child has no content.")
    _add(_p + ".total_exceeded", "error", "limit",
         "The top-level file's expansion budget is spent: max_total_expanded bytes expanded, or (detail.max_total_ratio) its decompressed bytes, all nesting levels together, passed max_total_ratio times its own size (at least 64 MiB); decompression stopped, the child has no content.")
    _add(_p + ".ratio_exceeded", "error", "limit",
         "The stream expands more than max_ratio times its compressed size (decompression bomb); stopped, no content.")

_add("gzip.crc_mismatch", "error", "container",
     "The CRC-32 or length in the gzip trailer does not match the decompressed data.")
_add("gzip.multistream", "info", "container",
     "Several gzip members concatenated in one file; they were decompressed as one stream, like gunzip does.")

# --- zip specific --------------------------------------------------------------------------------
_add("zip.no_central_directory", "error", "container",
     "No usable end-of-central-directory record / central directory (truncated or damaged zip); members were recovered by scanning local file headers.")
_add("zip.crc_mismatch", "error", "container",
     "A member's CRC-32 does not match its decompressed data.")
_add("zip.unsupported_method", "error", "container",
     "A member uses a compression method leaktriage cannot decompress (e.g. Deflate64, PPMd, WavPack); listed without content.")
_add("zip.name_codepage", "info", "container",
     "A member name without the UTF-8 flag decoded with a legacy code page other than cp437 (or as unflagged UTF-8); meta.name_encoding says which, meta.name_raw_b64 keeps the raw bytes.")
_add("zip.prefix_data", "info", "container",
     "Bytes before the first zip record (self-extractor stub, or data hidden in front); offsets were adjusted.")
_add("zip.unlisted_local_header", "warning", "container",
     "A local file header that the central directory does not list (a member hidden from ordinary unzip tools); it was read too, its meta has unlisted=true.")

# --- tar / 7z / rar specific -----------------------------------------------------------------------
_add("tar.link_member", "info", "container",
     "A symbolic or hard link member: recorded with its target (meta.link_target), no content.")
_add("tar.special_member", "info", "container",
     "A device, FIFO or other special member: recorded, no content.")
_add("7z.unsupported", "error", "container",
     "The 7z archive uses a feature py7zr cannot decompress (e.g. a BCJ2/PPMd/rar filter without its library); members are listed without content.")
_add("rar.unsupported", "error", "container",
     "RAR decompression needs an external unrar/unar/bsdtar binary and none is installed; the member list was recorded (stored, uncompressed members were still read) but compressed members have no content.")

# --- Outlook .msg / PST -------------------------------------------------------------------------------
_add("msg.unreadable", "error", "container",
     "The OLE2/.msg file could not be opened as an Outlook item (damaged compound file or missing property streams).")
_add("msg.not_mail", "info", "container",
     "The Outlook item is not an e-mail (contact, appointment, task, note, distribution list...); detail.item_class names it. It is recorded as an item reconstructed like a message.")
_add("msg.property_unreadable", "warning", "container",
     "A property of an Outlook item (body, recipient table, date...) could not be read; the reconstruction lacks it.")
_add("msg.attachment_unreadable", "error", "container",
     "An attachment of an Outlook item could not be read; the reconstructed message has a placeholder part for it.")
_add("msg.no_transport_headers", "info", "container",
     "No transport headers (PR_TRANSPORT_MESSAGE_HEADERS, e.g. a draft or an item never sent over SMTP): the header block was synthesised from properties.")
_add("pst.unreadable", "error", "container",
     "The PST/OST file could not be opened (damaged header or unsupported format).")
_add("pst.password_protected", "info", "container",
     "The PST has a password set (PR_PST_PASSWORD). A PST password is only a flag: the content was still read.")
_add("pst.encrypted", "info", "container",
     "The PST uses compressible or high encryption (a fixed byte substitution, not a secret); decoded transparently.")
_add("pst.folder_unreadable", "error", "container",
     "A PST folder (or its list of items) could not be read; the items in it are missing (detail.folder).")
_add("pst.item_unreadable", "error", "container",
     "A PST item could not be read; detail says which folder and index.")
_add("pst.not_mail", "info", "container",
     "A PST item that is not an e-mail (contact, appointment, distribution list...); recorded as an item, detail.item_class names it.")
_add("pst.embedded_message_raw", "warning", "container",
     "An attached message inside a PST message (attach method 5) whose raw property block could not be parsed; the block is kept as an application/vnd.ms-outlook-pst-embedded part instead of a message/rfc822 part.")
_add("pst.embedded_message_unreadable", "error", "container",
     "leaktriage's own PST reader (pstndb) could not read an attached message (attach method 5) of a PST item: a damaged or forged structure (the message names the NID, BID or offset) or a limit (16 levels of attached messages, 1000 per item). The attachment was rebuilt from its own property block instead (pst.embedded_message_partial or pst.embedded_message_raw).")
_add("pst.embedded_message_partial", "warning", "container",
     "An attached message inside a PST message was rebuilt (message/rfc822) from its own property block only, because it could not be read completely (pst.embedded_message_unreadable says why); its recipient table, attachments and values kept in sub-nodes are missing (detail.missing_values).")
_add("pst.orphan_items", "info", "container",
     "The PST has orphan items (recoverable items not linked into the folder tree); they are counted in detail.count, not read.")
_add("pst.too_many_items", "error", "limit",
     "More items than max_members; the rest were not read.")

# --- TNEF ---------------------------------------------------------------------------------------------
_add("tnef.damaged", "error", "container",
     "The TNEF stream is damaged (bad signature or an attribute running past the end); what was read before is kept.")
_add("tnef.checksum_mismatch", "warning", "container",
     "A TNEF attribute checksum does not match its data; the data was kept.")
_add("tnef.trailing_data", "warning", "container",
     "Bytes after the last complete TNEF attribute.")
_add("tnef.attachment_without_data", "warning", "container",
     "A TNEF attachment that has a name but no data.")
_add("tnef.member_too_large", "error", "limit",
     "A TNEF attachment or body larger than max_member_size; not kept.")
_add("tnef.total_exceeded", "error", "limit",
     "The bytes extracted from this top-level file exceed max_total_expanded; the rest of the TNEF was not extracted.")
_add("tnef.rtf_decompression_failed", "warning", "container",
     "The compressed RTF body (PR_RTF_COMPRESSED) could not be decompressed; the compressed bytes are given instead (name body.rtf.lzfu).")

# --- Apple Mail .emlx ----------------------------------------------------------------------------------
_add("emlx.bad_count", "error", "container",
     "The first line of the .emlx is not a byte count; the whole file after the first line was taken as the message.")
_add("emlx.truncated", "error", "container",
     "The .emlx is shorter than its byte count says (truncated); the bytes present were kept as the message.")
_add("emlx.plist_invalid", "warning", "container",
     "The trailing property list is missing or not valid XML plist; the message facts from it are missing.")
_add("emlx.partial", "info", "container",
     "A .partial.emlx: Apple Mail stored some attachments outside the message (in an Attachments folder next to it).")


# --- issue #14 (Trust): container limits and stream facts ---------------------------------------------
_add("zip.overlapping_member", "error", "container",
     "A member whose local header or data overlaps a member read before it (central-directory entries sharing one local header, or overlapping byte ranges: a zip bomb, or damage); listed, not expanded: its bytes are those of the member in detail.overlaps_index (meta.overlaps).")
_add("gzip.padding", "info", "container",
     "NUL bytes after the last gzip member (tape or block padding): nothing is in them; recorded so that every byte of the file is accounted for (offset, length).")


def all_codes() -> Dict[str, Tuple[str, str, str]]:
    return dict(CODES)
