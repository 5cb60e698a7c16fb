"""The interface every container reader implements.

A container reader turns the bytes of one item (a file on disk, an archive member, a decoded
attachment) into child items. It never parses a child itself: the pipeline sniffs each child and
sends it back through the same selection, with a depth limit (see pipeline.py). Problems are
yielded as data, never raised: a damaged container yields what can be read plus a Problem for the
rest.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Union


@dataclass(frozen=True)
class Limits:
    """Safety limits for hostile input (exceeding one yields a problem record, never a crash)."""

    max_depth: int = 24                 # layers of nesting (archive in archive in message ...)
    max_member_size: int = 4 << 30      # decompressed size of one member
    max_total_expanded: int = 64 << 30  # decompressed bytes of all members of one top-level file
    max_ratio: float = 200.0            # decompressed / compressed size per member (zip bombs)
    max_members: int = 1_000_000        # members per archive
    # What one top-level file can plausibly hold, whatever its nesting (issue #14 item 11):
    # bytes produced by decompression, all levels together: at most max_total_ratio times the
    # file's own size (but never less than TOTAL_RATIO_FLOOR, streams.py) ...
    max_total_ratio: float = 200.0
    # ... and container members opened, all levels together: nested_members_floor, or one per
    # nested_member_bytes bytes of the file when that is more
    nested_members_floor: int = 2_000
    nested_member_bytes: int = 16

    def nested_members(self, top_size: int) -> int:
        """Members a top-level file of top_size bytes may hold, over all its nesting levels."""
        return max(self.nested_members_floor, top_size // max(1, self.nested_member_bytes))


@dataclass
class Child:
    """One item found inside a container.

    segment: the locator segment naming it, built with locator.segment(kind, value),
             e.g. segment("zip", "Sophie/Inbox/1.eml") -> "zip:Sophie/Inbox/1.eml".
    name:    display name (member path, attachment file name, PST folder path + subject).
    data:    the child's bytes, or None when it could not be read (then problems say why).
    meta:    extra facts for the child's `file` record, JSON-serialisable, deterministic:
             e.g. {"compressed_size": 123, "crc32": "89abcdef", "mtime": "2017-03-01T10:00:00Z",
             "encrypted": False, "name_raw_b64": "...", "name_flags": ["traversal"]}.
    kind:    forces the sniffed kind when the container knows better, e.g. "message" for a
             message reconstructed from Outlook properties (data is then RFC 5322 bytes built by
             leaktriage) - otherwise None and the pipeline sniffs the bytes.
    message: extra facts for the `message` record of a reconstructed message, e.g.
             {"source": "pst", "reconstructed": True, "folder": "Inbox", "pst_nid": 2097188}.
    problems: Problem objects about this child (pipeline emits them with the child's locator).
    """

    segment: str
    name: str
    data: Optional[bytes]
    meta: dict = field(default_factory=dict)
    kind: Optional[str] = None
    message: Optional[dict] = None
    problems: list = field(default_factory=list)


@dataclass
class Problem:
    """A problem found by a reader. The pipeline turns it into a `problem` record.

    code must be registered in problems.py (CODES); segment, when set, locates the problem on a
    child (the problem's locator is then parent + "!" + segment), otherwise on the container itself.
    """

    code: str
    message: str
    offset: Optional[int] = None
    length: Optional[int] = None
    segment: Optional[str] = None
    detail: Optional[dict] = None


@dataclass
class Context:
    """What a reader may know about where it runs."""

    locator: str          # locator of the container being opened
    depth: int            # nesting depth of the container
    limits: Limits = field(default_factory=Limits)
    expanded_so_far: int = 0  # bytes expanded so far for the top-level file (readers add to it)
    top_size: int = 0         # size of the top-level file (0: unknown, no ratio budget)
    inflated_so_far: int = 0  # of those, bytes produced by decompression (readers add to it)


Reader = Callable[[bytes, Context], Iterator[Union[Child, Problem]]]


def iso_timestamp(ts: Optional[float]) -> Optional[str]:
    """Seconds since 1970 as UTC ISO-8601 (fractions kept), or None when out of range."""
    if ts is None:
        return None
    try:
        d = datetime.datetime.fromtimestamp(float(ts), tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return iso_datetime(d)


def iso_datetime(d: Optional[datetime.datetime]) -> Optional[str]:
    """A datetime as UTC ISO-8601 with Z (a naive one is taken as UTC)."""
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    d = d.astimezone(datetime.timezone.utc)
    if d.microsecond:
        return d.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")
