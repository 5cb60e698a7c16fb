"""The one place where leaktriage.privacy imports from the rest of leaktriage.

Only the search folding is shared (so that a lexicon term matches exactly what `leaktriage search`
would match). The package was being restructured while this was written: the folding lives in
leaktriage/text/fold.py after the restructure, in leaktriage/fold.py before it; both are tried, so
this module is the only place to change if it moves again.
"""
from __future__ import annotations

try:  # after the restructure
    from leaktriage.text.fold import FOLD_VERSION, fold, fold_with_map  # type: ignore  # noqa: F401
except ImportError:  # before it
    from leaktriage.fold import FOLD_VERSION, fold, fold_with_map  # type: ignore  # noqa: F401

__all__ = ["FOLD_VERSION", "fold", "fold_with_map"]
