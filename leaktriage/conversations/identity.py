"""When do two messages that share a Message-ID hold the same email?

Copies of one email (the Sent copy, the Inbox copies, an attached copy) share their Message-ID,
From, Subject and Date. A forger who alters one copy may change one of them; a mail program that
reuses ids (`<1@localhost>`) or a forger who reuses a real id for a new email changes several.
Rule: two messages with one Message-ID are the same email unless at least two of these three
differ: the From address, the subject (prefixes and case ignored), the Date (by more than a day).
A field absent from either message does not count as different.

`split_by_identity(items)` clusters the messages of one Message-ID by that rule, deterministically;
threading and corroboration both use it, so they agree on what an email is.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

DATE_TOLERANCE = 86400.0

T = TypeVar("T")
Identity = Tuple[Optional[str], str, Optional[float]]   # (from address, subject base, epoch seconds)


def differences(a: Identity, b: Identity) -> List[str]:
    """Which of from / subject / date differ between two identities (absent values never differ)."""
    out = []
    if a[0] and b[0] and a[0] != b[0]:
        out.append("from")
    if a[1] and b[1] and a[1] != b[1]:
        out.append("subject")
    if a[2] is not None and b[2] is not None and abs(a[2] - b[2]) > DATE_TOLERANCE:
        out.append("date")
    return out


def same_email(a: Identity, b: Identity) -> bool:
    return len(differences(a, b)) < 2


def split_by_identity(items: Sequence[T], identity: Callable[[T], Identity]) -> List[List[T]]:
    """Clusters of items (already in a deterministic order) that hold the same email. Each item
    joins the first cluster whose first member it agrees with. Clusters come back largest first
    (ties: in the order of their first member)."""
    clusters: List[List[T]] = []
    ids: List[Identity] = []
    for it in items:
        me = identity(it)
        for k, rep in enumerate(ids):
            if same_email(rep, me):
                clusters[k].append(it)
                break
        else:
            clusters.append([it])
            ids.append(me)
    order = sorted(range(len(clusters)), key=lambda k: (-len(clusters[k]), k))
    return [clusters[k] for k in order]
