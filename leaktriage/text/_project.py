"""The only imports from the rest of leaktriage (kept in one place for the package restructure).

charsets.decode_text gives the same charset provenance as the scan (declared / detected / fallback,
replaced bytes). Its module moved in the restructure (#13): leaktriage/mail/charsets.py, formerly
leaktriage/charsets.py; both layouts are accepted until the old one is gone.
"""
from __future__ import annotations

try:
    from leaktriage.mail.charsets import decode_text  # noqa: F401  (re-exported)
except ImportError:  # the layout before #13
    from leaktriage.charsets import decode_text  # noqa: F401
