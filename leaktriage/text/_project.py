"""The only imports from the rest of leaktriage (kept in one place for the package restructure).

charsets.decode_text gives the same charset provenance as the scan (declared / detected / fallback,
replaced bytes); charsets.lookup maps charset labels to codecs the way the scan does.
"""
from __future__ import annotations

from leaktriage.charsets import decode_text, lookup  # noqa: F401  (re-exported)
