"""Building indicators (leaktriage.auth's findings): the code table is leaktriage.model.auth_codes."""
from __future__ import annotations

from typing import Any, Dict

from leaktriage.model.auth_codes import CODES, STAGE  # noqa: F401  (re-exported for auth's callers)


def indicator(code: str, evidence: Dict[str, Any], explanation: str) -> Dict[str, Any]:
    """Build one indicator dict; its severity comes from CODES."""
    return {"code": code, "severity": CODES[code][0], "evidence": evidence, "explanation": explanation}
