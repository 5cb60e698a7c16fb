"""The only import from the rest of leaktriage, kept in one place: the scan's charset decoding.

decode_text gives the same charset provenance as the scan (declared / detected / fallback, replaced
bytes), so a text attachment reads the same in the manifest, the index and `show --text`.
"""
from __future__ import annotations

from leaktriage.mail.charsets import decode_text  # noqa: F401  (re-exported)
