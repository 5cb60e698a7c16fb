"""Indicator codes of leaktriage.conversations (same format as leaktriage/problems.py and auth/codes.py).

CODES maps code -> (severity, stage, description); `register()` adds them to the problem-code
registry. Every indicator is a dict {"code", "severity", "evidence", "explanation"}.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

STAGE = "auth"

CODES: Dict[str, Tuple[str, str, str]] = {
    "copy.contradiction": ("error", STAGE, "Copies of one email (same Message-ID or same canonical digest) differ in their body text, an attachment or an identity header: one copy was changed after it was sent, or on the way. The evidence names the copies on each side and the parts that differ."),
    "copy.corroborated": ("info", STAGE, "Identical copies of this email (same decoded body text and attachments) are held in the mailboxes of two or more custodians: independent copies agree."),
    "copy.message_id_reused": ("info", STAGE, "Two different emails (From, Subject and Date: at least two differ) carry the same Message-ID: a mail program that reuses ids, or an id copied into a new email. They are not compared as copies."),
}


def indicator(code: str, evidence: Dict[str, Any], explanation: str) -> Dict[str, Any]:
    """One indicator dict; its severity comes from CODES."""
    return {"code": code, "severity": CODES[code][0], "evidence": evidence, "explanation": explanation}


def register() -> None:
    """Add these codes to leaktriage.problems' registry (for reports and the findings table)."""
    from . import _deps
    _deps.register_codes(CODES)
