"""The registry of text-extraction problem codes: code -> (severity, description).

Severity follows the rest of leaktriage: "info" (noteworthy, nothing lost), "warning" (some text is
missing or was guessed: read the problem), "error" (the text, or part of it, could not be read).
A result whose text is not empty but which carries a warning or an error has status "partial".

The codes are stable: other modules (index, show --text, the privacy scanner) store and filter
them, and docs/text.md lists them. Add codes, never rename them.
"""
from __future__ import annotations

from typing import Dict, Tuple

SEVERITIES = ("info", "warning", "error")

TEXT_CODES: Dict[str, Tuple[str, str]] = {
    # what could not be extracted at all
    "text.unsupported": ("info", "A format whose text is not extracted (archive, executable, legacy binary Office file, "
                                 "audio/video, unknown binary). Archives and attached messages are opened by the scan itself."),
    "text.needs_ocr": ("info", "An image: any text in it can only be read by OCR, which leaktriage does not do."),
    "text.too_large": ("error", "The input is larger than TextLimits.max_bytes; it was not parsed."),
    "text.encrypted": ("error", "The document is encrypted with a password (PDF user password, encrypted zip member, "
                                "password-protected Office or ODF file); its text cannot be read."),
    "text.damaged": ("error", "The document's structure, or one of its parts, is broken beyond what the reader "
                              "could repair; the message says what failed (with status partial, the rest was read)."),
    "text.timeout": ("error", "Extraction took longer than the time limit; the text read until then is kept "
                              "(in a subprocess killed by IsolatedExtractor, nothing is kept)."),
    "text.crashed": ("error", "The isolated extraction process died (a crash or the memory limit in the C library); "
                              "no text."),
    "text.memory_limit": ("error", "Extraction ran out of memory (TextLimits.max_memory in an isolated process)."),
    "text.internal_error": ("error", "An unexpected error in leaktriage's extractor (a bug: please report it with the "
                                     "document's SHA-256); the message names the exception."),
    # what was found about the text layer
    "text.empty": ("info", "The document was read and holds no text (a blank page, an empty sheet)."),
    "text.no_text_layer": ("warning", "A PDF whose pages hold images but no text: a scan, whose text needs OCR."),
    "text.partial_text_layer": ("warning", "Some pages of a PDF hold images but no text (scanned pages among text "
                                           "pages): their text needs OCR."),
    "text.page_failed": ("error", "A page (or slide, sheet, part) could not be read; the others were."),
    "text.input_truncated": ("warning", "The file looks cut short (no end-of-file marker or central directory); "
                                        "the text is what could be recovered."),
    "text.encrypted_readable": ("info", "The document is encrypted with an empty user password (only its permissions "
                                        "are restricted): its text was read."),
    # bounds
    "text.truncated": ("warning", "The text reached TextLimits.max_chars; the rest was not extracted."),
    "text.pages_limit": ("warning", "More pages (or slides, sheets) than TextLimits.max_pages; the rest were skipped."),
    "text.member_too_large": ("warning", "A part of a zip-based document expands beyond TextLimits.max_member_bytes "
                                         "(or past the total budget); it was read only up to the limit."),
    "text.zip_bomb": ("error", "A part of a zip-based document has a compression ratio above TextLimits.max_ratio "
                               "(a decompression bomb); it was not expanded."),
    "text.depth_limit": ("warning", "Element or group nesting deeper than TextLimits.max_depth; the deeper content "
                                    "was skipped."),
    # XML
    "text.xml_forbidden": ("error", "An XML part declares a DOCTYPE or entities (never needed by Office or ODF files, "
                                    "the mark of an entity-expansion attack); it was not parsed."),
    "text.xml_malformed": ("warning", "An XML part is not well-formed; the text before the error is kept."),
    # how the text was decoded
    "text.charset_guessed": ("info", "Plain text without a usable declared charset: the charset was detected "
                                     "(the result's charset field says which)."),
    "text.charset_replaced": ("warning", "Bytes that are not valid in the charset used were replaced by U+FFFD."),
    "text.charset_suspect": ("warning", "A message text part was decoded with its declared single-byte charset (as "
                                        "the scan recorded) but its bytes are valid UTF-8 with multi-byte characters: "
                                        "probably UTF-8 mislabelled, the text may read as mojibake ('Ã©' for 'é')."),
    "text.tracked_changes": ("info", "The document holds tracked deletions, comments or speaker notes; their text is "
                                     "included."),
    "text.type_mismatch": ("info", "The content is a different format from the one declared (content type, libmagic "
                                   "or file name); the content decided."),
}


def severity(code: str) -> str:
    return TEXT_CODES[code][0]


def describe(code: str) -> str:
    return TEXT_CODES[code][1]
