"""Indicators of leaktriage.conversations: the code table is leaktriage.model.conversation_codes.

Every indicator is a dict {"code", "severity", "evidence", "explanation"}.
"""
from __future__ import annotations

from typing import Any, Dict

from leaktriage.model.conversation_codes import CODES


def indicator(code: str, evidence: Dict[str, Any], explanation: str) -> Dict[str, Any]:
    """One indicator dict; its severity comes from CODES."""
    return {"code": code, "severity": CODES[code][0], "evidence": evidence, "explanation": explanation}
