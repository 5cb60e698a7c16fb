"""Indicator codes of the comparison of copies (leaktriage.conversations), in the registry format of
leaktriage.model.problems: code -> (severity, stage, description). They are findings of the index
(`finding:copy.contradiction`), shown with the DKIM verdicts; see docs/conversations.md.
"""
from __future__ import annotations

from typing import Dict, Tuple

STAGE = "auth"

CODES: Dict[str, Tuple[str, str, str]] = {
    "copy.contradiction": ("error", STAGE, "Copies of one email (same Message-ID or same canonical digest) differ in their body text, an attachment or an identity header: one copy was changed after it was sent, or on the way. The evidence names the copies on each side and the parts that differ."),
    "copy.corroborated": ("info", STAGE, "Identical copies of this email (same decoded body text and attachments) are held in the mailboxes of two or more custodians: independent copies agree."),
    "copy.message_id_reused": ("info", STAGE, "Two different emails (From, Subject and Date: at least two differ) carry the same Message-ID: a mail program that reuses ids, or an id copied into a new email. They are not compared as copies."),
}
