"""From a locator back to bytes: re-open exactly the item a manifest record names.

resolve(dump_root, locator) returns the item's bytes:
- a file or archive member: its content;
- an mbox message: the stored bytes (as in the mbox; `unquoted=True` for the message as sent);
- a MIME entity: its transfer-decoded body (for message/rfc822 entities: the attached message);
- a uuencoded file: its decoded bytes.
Used by `show --raw`, `extract`, `verify` and `index`. Raises ResolveError with a clear message.
"""
from __future__ import annotations

import os

from leaktriage.model import locator as L
from leaktriage.mail import mbox, mime, transfer
from leaktriage.content import sniff
from leaktriage.containers import Child, Context, Limits, reader


class ResolveError(Exception):
    pass


def read_path(dump_root: str, rel: bytes) -> bytes:
    full = os.path.join(os.fsencode(dump_root), rel)
    if os.path.islink(full):
        raise ResolveError("%s is a symbolic link (never followed)" % os.fsdecode(rel))
    try:
        with open(full, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ResolveError("cannot read %s: %s" % (os.fsdecode(full), exc.strerror or exc))


def _container_child(data: bytes, seg_kind: str, seg_value: str, where: str) -> bytes:
    kind = sniff.container_kind(data[:65536])
    rd = reader(kind) if kind else None
    if rd is None:
        raise ResolveError("%s is not a container leaktriage can open (kind %s)" % (where, kind))
    want = "%s:%s" % (seg_kind, seg_value)
    for obj in rd(data, Context(locator=where, depth=0, limits=Limits())):
        if isinstance(obj, Child) and obj.segment == want:
            if obj.data is None:
                raise ResolveError("%s!%s could not be read (see its problem records)" % (where, want))
            return obj.data
    raise ResolveError("no member %s in %s" % (want, where))


def _mbox_message(data: bytes, offset: int, unquoted: bool, where: str) -> bytes:
    sp = mbox.split(data, 0, len(data))
    for e in sp.entries:
        if e.marker_offset == offset:
            stored = data[e.offset:e.end]
            return mbox.unquote(stored, sp.variant)[0] if unquoted else stored
    raise ResolveError("no mbox message with its From line at byte %d in %s" % (offset, where))


def entity_bytes(message: bytes, target: str, root_path: str = "1") -> bytes:
    """Transfer-decoded body of entity `target` of a message whose root entity is `root_path`."""
    while True:
        ents = mime.parse_entities(message, 0, len(message), "r", root_path, "r")
        recs = {p["path"]: p for p in ents.parts if "uu_offset" not in p}
        if target in recs:
            p = recs[target]
            raw = message[p["body_offset"]:p["body_offset"] + p["body_length"]]
            return transfer.decode(raw, p.get("cte"))[0]
        # descend into the attached message that contains the target
        best = None
        for path, p in recs.items():
            if not p["content_type"].startswith("multipart/") and target.startswith(path + "."):
                if best is None or len(path) > len(best):
                    best = path
        if best is None:
            raise ResolveError("no MIME entity %s" % target)
        p = recs[best]
        raw = message[p["body_offset"]:p["body_offset"] + p["body_length"]]
        message = transfer.decode(raw, p.get("cte"))[0]
        root_path = best + ".1"


def _uu(data: bytes, n: int, where: str) -> bytes:
    for i, found in enumerate(transfer.find_uuencoded(data), 1):
        if i == n:
            return found[4]
    raise ResolveError("no uuencoded file %d in %s" % (n, where))


def resolve(dump_root: str, loc: str, unquoted: bool = False) -> bytes:
    try:
        steps = L.parse(loc)
    except L.LocatorError as exc:
        raise ResolveError(str(exc))
    data = read_path(dump_root, steps[0].raw())
    where = steps[0].value
    msg_root = "1"
    for st in steps[1:]:
        if st.kind == "part":
            # parts of the message held in `data`; a part path continues from the message's root
            data = entity_bytes(data, st.value, msg_root if st.value.startswith(msg_root) else "1")
            msg_root = st.value + ".1"
            where += "#" + st.value
            continue
        if st.kind == "mbox":
            try:
                off = int(st.value)
            except ValueError:
                raise ResolveError("bad mbox offset in %s" % loc)
            # parts below an mbox message are relative to the un-quoted message
            last = st is steps[-1]
            data = _mbox_message(data, off, unquoted or not last, where)
        elif st.kind == "uu":
            data = _uu(data, int(st.value), where)
        else:
            data = _container_child(data, st.kind, st.value, where)
        where += "!%s:%s" % (st.kind, st.value)
        msg_root = "1"
    return data
