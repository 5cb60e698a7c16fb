"""The one way back from a locator to its bytes.

    resolve(dump_root, locator)            -> bytes     one item, opened from scratch (show --raw)
    r = Resolver(dump_root, budget=...)                  many items in manifest order (extract, index,
    r.item(locator)                        -> bytes      keys recover): containers opened once, mbox
    r.message(message_record)              -> bytes      files split once, members kept within a budget
    r.part(part_record, message_record)    -> bytes

What the bytes are:
- a file or archive member: its content (a file over the budget is memory-mapped, not copied);
- an mbox message: the bytes stored in the mbox (item(..., unquoted=True), or message() with
  `unquoted=True`, gives the message as sent, '>From ' quoting undone: what its parts refer to);
- a MIME entity: its transfer-decoded body (message/rfc822: the attached message);
- a uuencoded file: its decoded bytes;
- an Outlook item: leaktriage's reconstruction of the message.

message() and part() check the bytes against the digest the manifest records and raise
ItemChanged (exit 5) when they differ. Every failure is a ResolveError subclass with a message
that says what and where; nothing is swallowed. Only regular files are opened (O_NOFOLLOW and
O_NONBLOCK, then checked with fstat: a FIFO or a device planted after the scan is refused, not
waited on).
"""
from __future__ import annotations

import hashlib
import mmap
import os
import stat
from collections import OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from leaktriage.containers import Child, Context, Limits, reader
from leaktriage.content import sniff
from leaktriage.errors import DumpError, IntegrityError
from leaktriage.mail import mbox, mime, transfer
from leaktriage.model import locator as L
from leaktriage.model.records import is_entity
from leaktriage.scanner.walk import open_in_dump

DEFAULT_BUDGET = 512 << 20


class ResolveError(DumpError):
    """An item could not be read back from the dump (exit 6)."""


class ItemMissing(ResolveError):
    """The file, member, mbox message, MIME entity or uuencoded file is not there."""


class NotRegularFile(ResolveError):
    """A symbolic link, FIFO, socket or device where the manifest has a file: never opened."""


class NotAContainer(ResolveError):
    """The locator steps into something leaktriage cannot open as a container."""


class ItemUnreadable(ResolveError):
    """The container holds the item but it could not be read (damaged, encrypted, I/O error)."""


class ItemChanged(IntegrityError):
    """The bytes found differ from the digest the manifest records (exit 5)."""


def holds_any(dump_root: str, locators: Iterable[str], sample: int = 200) -> bool:
    """Does the dump hold at least one of the files that the first `sample` distinct top-level paths
    of these locators name? (False: the wrong folder was given as the dump.) Nothing is read."""
    from leaktriage.manifest.reader import top_path
    tops: List[str] = []
    seen = set()
    for loc in locators:
        t = top_path(loc)
        if t not in seen:
            seen.add(t)
            tops.append(t)
            if len(tops) >= sample:
                break
    if not tops:
        return True
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for t in tops:
        try:
            os.close(open_in_dump(dump_root, L.unescape(t), flags))
            return True
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return True         # there, but not openable as a file (a link, a FIFO): not a wrong folder
    return False


def read_path(dump_root: str, rel: bytes, mapped_over: Optional[int] = None):
    """A regular file of the dump, read-only: its bytes (a read-only memory map when it is larger
    than mapped_over)."""
    full = os.path.join(os.fsencode(dump_root), rel)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = open_in_dump(dump_root, rel, flags)   # past PATH_MAX too; a one-file dump is its root
    except FileNotFoundError:
        raise ItemMissing("%s is not in the dump (moved or deleted since the scan?)" % os.fsdecode(rel))
    except OSError as exc:
        if os.path.islink(full):
            raise NotRegularFile("%s is a symbolic link (never followed)" % os.fsdecode(rel))
        raise ItemUnreadable("cannot read %s: %s" % (os.fsdecode(full), exc.strerror or exc))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile("%s is not a regular file (a FIFO, socket or device now): not opened"
                                 % os.fsdecode(rel))
        if mapped_over is not None and st.st_size > mapped_over:
            return mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
        chunks = []
        left = st.st_size
        while left > 0:      # what fstat said, no more: a file growing meanwhile is not followed
            b = os.read(fd, min(left, 1 << 24))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)
    except OSError as exc:
        raise ItemUnreadable("cannot read %s: %s" % (os.fsdecode(full), exc.strerror or exc))
    finally:
        os.close(fd)


def read_range(dump_root: str, rel: bytes, offset: int, length: int) -> bytes:
    """length bytes at offset of a regular file of the dump (an mbox message without reading the mbox)."""
    full = os.path.join(os.fsencode(dump_root), rel)
    try:
        fd = open_in_dump(dump_root, rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ItemMissing("%s is not in the dump (moved or deleted since the scan?)" % os.fsdecode(rel))
    except OSError as exc:
        raise ItemUnreadable("cannot read %s: %s" % (os.fsdecode(full), exc.strerror or exc))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile("%s is not a regular file (a FIFO, socket or device now): not opened"
                                 % os.fsdecode(rel))
        return os.pread(fd, length, offset)
    except OSError as exc:
        raise ItemUnreadable("cannot read %s: %s" % (os.fsdecode(full), exc.strerror or exc))
    finally:
        os.close(fd)


def entity_bytes(message: bytes, target: str, root_path: str = "1") -> bytes:
    """Transfer-decoded body of entity `target` of a message whose root entity is `root_path`."""
    return _Entities(message, root_path).body(target)


class _Entities:
    """The MIME entities of one message, parsed once, with the attached messages inside it."""

    def __init__(self, message, root_path: str = "1"):
        self.levels: List[Tuple[str, bytes, Dict[str, dict]]] = []
        self._add(message, root_path)

    def _add(self, message, root_path: str) -> Dict[str, dict]:
        ents = mime.parse_entities(message, 0, len(message), "r", root_path, "r")
        recs = {p["path"]: p for p in ents.parts if is_entity(p)}
        self.levels.append((root_path, message, recs))
        return recs

    def body(self, target: str) -> bytes:
        # the deepest message already parsed that holds the target, then down from there
        start = max((lv for lv in self.levels if target == lv[0] or target.startswith(lv[0] + ".")),
                    key=lambda lv: len(lv[0]), default=None)
        if start is None:
            raise ItemMissing("no MIME entity %s" % target)
        _root, message, recs = start
        while True:
            if target in recs:
                p = recs[target]
                raw = message[p["body_offset"]:p["body_offset"] + p["body_length"]]
                return transfer.decode(raw, p.get("cte"))[0]
            best = None
            for path, p in recs.items():
                if not p["content_type"].startswith("multipart/") and target.startswith(path + "."):
                    if best is None or len(path) > len(best):
                        best = path
            if best is None:
                raise ItemMissing("no MIME entity %s" % target)
            p = recs[best]
            inner = transfer.decode(message[p["body_offset"]:p["body_offset"] + p["body_length"]], p.get("cte"))[0]
            message, recs = inner, self._add(inner, best + ".1")


def _uu(data: bytes, n: int, where: str) -> bytes:
    for i, found in enumerate(transfer.find_uuencoded(data), 1):
        if i == n:
            return found[4]
    raise ItemMissing("no uuencoded file %d in %s" % (n, where))


def _is_mbox_message(loc: str) -> bool:
    """The locator's last step is an mbox message (separators are never escaped characters)."""
    i = loc.rfind("!")
    return i >= 0 and loc.startswith("mbox:", i + 1) and "#" not in loc[i:]


def _hqx(data: bytes, fork: str, where: str) -> bytes:
    found = transfer.find_binhex(bytes(data), declared=True)
    got = getattr(found, fork, None) if found is not None and fork in ("data", "rsrc") else None
    if got is None:
        raise ItemMissing("no BinHex %s fork in %s" % (fork, where))
    return got


def _parent_and_last(loc: str, steps: List[L.Step]) -> Tuple[str, L.Step]:
    last = steps[-1]
    cut = len(loc) - len(last.value) - (1 if last.kind == "part" else len(last.kind) + 2)
    return loc[:cut], last


class Resolver:
    """Bytes of many items, read in manifest order with caches bounded by `budget` bytes.

    Member iterators stay open where they stopped (the manifest lists members in the order the
    reader yields them), members passed over are kept while they fit in the budget, an mbox is
    split once, and a message's MIME structure is parsed once for all its parts."""

    def __init__(self, dump_root: str, budget: int = DEFAULT_BUDGET):
        self.root = dump_root
        self.budget = budget
        self.cache: "OrderedDict[str, bytes]" = OrderedDict()      # locator -> bytes (LRU)
        self.cached = 0
        self.members: "OrderedDict[str, list]" = OrderedDict()     # container locator -> [iterator, {seg: bytes}, size]
        self.mboxes: "OrderedDict[str, Dict[int, Tuple[int, int, str]]]" = OrderedDict()
        self.entities: "OrderedDict[str, _Entities]" = OrderedDict()

    # -- the cache ---------------------------------------------------------------------------------
    def _keep(self, loc: str, data) -> None:
        if isinstance(data, mmap.mmap) or len(data) > self.budget // 4:
            return
        old = self.cache.pop(loc, None)
        if old is not None:
            self.cached -= len(old)
        self.cache[loc] = data
        self.cached += len(data)
        self._trim()

    def _trim(self, protect: Optional[str] = None) -> None:
        """Drop cached bytes, oldest first, until they fit the budget: other containers' kept
        members, then cached items, then the oldest kept members of the container being read."""
        while self.cached > self.budget:
            other = next((k for k in self.members if k != protect), None)
            if other is not None:
                ent = self.members.pop(other)
                self.cached -= ent[2]
            elif self.cache:
                _, old = self.cache.popitem(last=False)
                self.cached -= len(old)
            elif protect in self.members and self.members[protect][1]:
                ent = self.members[protect]
                _, old = ent[1].popitem(last=False)
                ent[2] -= len(old)
                self.cached -= len(old)
            else:
                break

    # -- any item ------------------------------------------------------------------------------------
    def item(self, loc: str, unquoted: bool = False):
        """The bytes of the item a locator names (see the module docstring)."""
        # un-quoting means something for an mbox message only: any other item is one cache entry, whatever
        # the caller asked (a zip member asked for both ways was otherwise read twice, the second time by
        # re-reading the whole archive: minutes on a dump of zipped mailboxes)
        unquoted = unquoted and _is_mbox_message(loc)
        key = loc + ("\x00u" if unquoted else "")
        got = self.cache.get(key)
        if got is not None:
            self.cache.move_to_end(key)
            return got
        try:
            steps = L.parse(loc)
        except L.LocatorError as exc:
            raise ItemMissing(str(exc))
        if len(steps) == 1:
            data = read_path(self.root, steps[0].raw(), mapped_over=self.budget // 4)
            self._keep(key, data)
            return data
        parent, last = _parent_and_last(loc, steps)
        if last.kind == "part":
            pstep = L.parse(parent)[-1]
            data = self._entities(parent, pstep.value + ".1" if pstep.kind == "part" else "1").body(last.value)
        elif last.kind == "mbox":
            data = self._mbox_message(parent, last.value, unquoted)
        elif last.kind == "uu":
            data = _uu(self.item(parent), int(last.value) if last.value.isdigit() else -1, parent)
        elif last.kind == "hqx":
            data = _hqx(self.item(parent), last.value, parent)
        else:
            data = self._member(parent, "%s:%s" % (last.kind, last.value))
        self._keep(key, data)
        return data

    def _entities(self, msg_loc: str, root_path: str = "1") -> _Entities:
        ent = self.entities.get(msg_loc)
        if ent is None:
            # the parts of an mbox message are those of the message as sent (un-quoted)
            ent = _Entities(self.item(msg_loc, unquoted=True), root_path)
            self.entities[msg_loc] = ent
            while len(self.entities) > 4:
                self.entities.popitem(last=False)
        else:
            self.entities.move_to_end(msg_loc)
        return ent

    def _mbox_index(self, parent: str) -> Dict[int, Tuple[int, int, str]]:
        idx = self.mboxes.get(parent)
        if idx is None:
            data = self.item(parent)
            sp = mbox.split(data, 0, len(data))
            idx = {e.marker_offset: (e.offset, e.end, sp.variant) for e in sp.entries}
            self.mboxes[parent] = idx
            while len(self.mboxes) > 2:
                self.mboxes.popitem(last=False)
        return idx

    def _mbox_message(self, parent: str, value: str, unquoted: bool) -> bytes:
        try:
            marker = int(value)
        except ValueError:
            raise ItemMissing("bad mbox offset %r in %s" % (value, parent))
        idx = self._mbox_index(parent)
        if marker not in idx:
            raise ItemMissing("no mbox message with its From line at byte %d in %s" % (marker, parent))
        a, b, variant = idx[marker]
        stored = bytes(self.item(parent)[a:b])
        return mbox.unquote(stored, variant)[0] if unquoted else stored

    def _member(self, parent: str, seg: str):
        ent = self.members.get(parent)
        if ent is not None:
            self.members.move_to_end(parent)
            it, buf, _size = ent
            if seg in buf:
                data = buf.pop(seg)
                ent[2] -= len(data)
                self.cached -= len(data)
                return self._checked_member(parent, seg, data)
        else:
            pdata = self.item(parent)
            kind = sniff.container_kind(bytes(pdata[:65536]))
            rd = reader(kind) if kind else None
            if rd is None:
                raise NotAContainer("%s is not a container leaktriage can open (kind %s)" % (parent, kind))
            it = iter(rd(pdata, Context(locator=parent, depth=0, limits=Limits())))
            buf = OrderedDict()
            ent = [it, buf, 0]
            self.members[parent] = ent
        for obj in it:
            if not isinstance(obj, Child):
                continue
            if obj.segment == seg:
                return self._checked_member(parent, seg, obj.data)
            if obj.data is not None and len(obj.data) <= self.budget // 4:
                buf[obj.segment] = obj.data     # passed over: kept for a later request, within budget
                ent[2] += len(obj.data)
                self.cached += len(obj.data)
                self._trim(protect=parent)
        # the reader is done: the member is not there (or was passed over and dropped for the budget)
        self.members.pop(parent, None)
        self.cached -= ent[2]
        fresh = self._scan_for(parent, seg)
        return self._checked_member(parent, seg, fresh)

    def _scan_for(self, parent: str, seg: str):
        pdata = self.item(parent)
        kind = sniff.container_kind(bytes(pdata[:65536]))
        rd = reader(kind) if kind else None
        if rd is None:
            raise NotAContainer("%s is not a container leaktriage can open (kind %s)" % (parent, kind))
        for obj in rd(pdata, Context(locator=parent, depth=0, limits=Limits())):
            if isinstance(obj, Child) and obj.segment == seg:
                return obj.data
        raise ItemMissing("no member %s in %s" % (seg, parent))

    @staticmethod
    def _checked_member(parent: str, seg: str, data):
        if data is None:
            raise ItemUnreadable("%s!%s could not be read (see its problem records)" % (parent, seg))
        return data

    # -- records, checked against the manifest --------------------------------------------------------
    def message(self, rec: dict, unquoted: bool = False) -> bytes:
        """The bytes of a message record, checked: as stored (what `sha256` covers), or with
        unquoted=True as sent (mbox '>From ' quoting undone; `unquoted_sha256` when recorded)."""
        loc = rec["locator"]
        want = rec.get("sha256")
        stored = self._stored_message(rec)
        if want and hashlib.sha256(stored).hexdigest() != want:
            if rec.get("reconstructed"):
                stored = self._reconstruction(loc, stored, want)
            else:
                raise ItemChanged("%s: the bytes in the dump have SHA-256 %s, the manifest records %s (the dump "
                                  "changed since the scan; run leaktriage verify)"
                                  % (loc, hashlib.sha256(stored).hexdigest(), want))
        if unquoted and rec.get("unquoted_sha256"):
            variant = (rec.get("mbox") or {}).get("variant") or "mboxrd"
            sent = mbox.unquote(stored, variant)[0]
            if hashlib.sha256(sent).hexdigest() != rec["unquoted_sha256"]:
                raise ItemChanged("%s: the un-quoted message does not match the manifest's unquoted_sha256" % loc)
            return sent
        return stored

    def _stored_message(self, rec: dict) -> bytes:
        loc = rec["locator"]
        steps = L.parse(loc)
        off, length = rec.get("offset"), rec.get("length")
        if steps[-1].kind == "mbox" and off is not None and length is not None:
            ploc = _parent_and_last(loc, steps)[0]
            if len(steps) == 2 and ploc not in self.cache:
                return read_range(self.root, steps[0].raw(), off, length)   # an mbox on disk: just this message
            return bytes(self.item(ploc)[off:off + length])
        data = self.item(loc)
        if off is not None and length is not None and len(data) != length:
            return bytes(data[off:off + length])
        return bytes(data) if isinstance(data, mmap.mmap) else data

    def _reconstruction(self, loc: str, data: bytes, sha: str) -> bytes:
        """An Outlook item: the message is leaktriage's reconstruction, made by the container reader."""
        kind = sniff.container_kind(data[:65536])
        rd = reader(kind) if kind else None
        if rd is not None:
            for obj in rd(data, Context(locator=loc, depth=0, limits=Limits())):
                if isinstance(obj, Child) and obj.data is not None and hashlib.sha256(obj.data).hexdigest() == sha:
                    return obj.data
        raise ItemChanged("%s: the reconstructed message could not be rebuilt with the SHA-256 the manifest "
                          "records" % loc)

    def part(self, rec: dict, message: Optional[bytes] = None) -> bytes:
        """The decoded bytes of a part record (or a uuencoded file), checked against its sha256.

        message: the bytes of the part's own message as sent (message(msg, unquoted=True)), when the
        caller has them: the body is then taken at the part's recorded offsets without parsing the
        message again (same check against the digest)."""
        if message is not None and "body_offset" in rec and "body_length" in rec and "uu_offset" not in rec:
            raw = message[rec["body_offset"]:rec["body_offset"] + rec["body_length"]]
            data = transfer.decode(bytes(raw), rec.get("cte"))[0]
            if hashlib.sha256(data).hexdigest() == rec.get("sha256"):
                return data
        data = self.item(rec["locator"])
        want = rec.get("sha256")
        if want and hashlib.sha256(data).hexdigest() != want:
            raise ItemChanged("%s: the decoded bytes have SHA-256 %s, the manifest records %s (the dump changed "
                              "since the scan; run leaktriage verify)"
                              % (rec["locator"], hashlib.sha256(data).hexdigest(), want))
        return data

    def checked(self, rec: dict) -> bytes:
        """The bytes a record's sha256 covers, checked: message, part or file/member."""
        if rec.get("record") == "message":
            return self.message(rec)
        return self.part(rec)


def resolve(dump_root: str, loc: str, unquoted: bool = False) -> bytes:
    """One item's bytes, opened from scratch (see Resolver.item)."""
    data = Resolver(dump_root, budget=DEFAULT_BUDGET).item(loc, unquoted=unquoted)
    return bytes(data) if isinstance(data, mmap.mmap) else data


def items_in_order(resolver: Resolver, recs: Iterator[dict]) -> Iterator[Tuple[dict, Optional[bytes], Optional[Exception]]]:
    """(record, checked bytes or None, the error or None) for each record: failures are typed and
    handed back, never swallowed."""
    for rec in recs:
        try:
            yield rec, resolver.checked(rec), None
        except ResolveError as exc:
            yield rec, None, exc
        except IntegrityError as exc:
            yield rec, None, exc
