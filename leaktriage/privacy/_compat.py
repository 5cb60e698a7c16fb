"""The one place where leaktriage.privacy imports from the rest of leaktriage.

Only the search folding is shared (so that a lexicon term matches exactly what `leaktriage search`
would match). The package is being restructured: the folding may move to leaktriage.search.fold;
both locations are tried, so this module is the only line to change afterwards.
"""
from __future__ import annotations

try:  # after the restructure
    from leaktriage.search.fold import FOLD_VERSION, fold, fold_with_map  # type: ignore  # noqa: F401
except ImportError:  # today
    from leaktriage.fold import FOLD_VERSION, fold, fold_with_map  # noqa: F401

__all__ = ["FOLD_VERSION", "fold", "fold_with_map"]
