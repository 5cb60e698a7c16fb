"""Bounded reading of zip-based documents (OOXML, ODF) and streaming XML parsing without entities.

ZipParts opens the zip with the stdlib (or, when the central directory is missing, by walking the
local headers of a truncated file) and reads one member at a time in chunks, never expanding more than
max_member_bytes per member or max_total_bytes in all, and refusing members whose compression ratio
says "bomb". parse_xml() feeds those chunks to expat (C, streaming: memory stays bounded by the chunk
size) with handlers that refuse any DOCTYPE or entity declaration, and counts element depth.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Dict, Iterator, List, Optional
from xml.parsers import expat

from .model import Context, Full, Timeout

CHUNK = 1 << 16
RATIO_FLOOR = 1 << 20   # members expanding to less than this are never called bombs


class _Member:
    __slots__ = ("name", "compress_type", "compress_size", "file_size", "offset", "encrypted", "info")

    def __init__(self, name, compress_type, compress_size, file_size, offset, encrypted, info=None):
        self.name = name
        self.compress_type = compress_type
        self.compress_size = compress_size
        self.file_size = file_size
        self.offset = offset
        self.encrypted = encrypted
        self.info = info


def _scan_local_headers(data: bytes, limit: int = 10000) -> List[_Member]:
    """Members of a zip whose central directory is missing (a truncated file): walk the local headers."""
    out: List[_Member] = []
    pos = 0
    n = len(data)
    while len(out) < limit:
        pos = data.find(b"PK\x03\x04", pos)
        if pos < 0 or pos + 30 > n:
            break
        (_, _, flags, method, _, _, _, csize, usize, nlen, xlen) = struct.unpack_from("<IHHHHHIIIHH", data, pos)
        name_b = data[pos + 30:pos + 30 + nlen]
        start = pos + 30 + nlen + xlen
        name = name_b.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if flags & 0x08 and csize == 0:
            csize = -1   # size in a data descriptor after the data: read to the next header or the end
        out.append(_Member(name, method, csize, usize, start, bool(flags & 1)))
        pos = start if csize < 0 else start + csize
    return out


class ZipParts:
    def __init__(self, data: bytes, ctx: Context):
        self.data = data
        self.ctx = ctx
        self.total = 0
        self.salvaged = False
        self.members: Dict[str, _Member] = {}
        self._zip: Optional[zipfile.ZipFile] = None
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            for info in self._zip.infolist():
                self.members.setdefault(info.filename, _Member(info.filename, info.compress_type, info.compress_size,
                                                               info.file_size, None, bool(info.flag_bits & 1), info))
        except Exception:
            self._zip = None
            self.salvaged = True
            for m in _scan_local_headers(data):
                self.members.setdefault(m.name, m)
            if self.members:
                ctx.report("text.input_truncated", "the zip has no readable central directory (a truncated or damaged "
                           "file): its parts were found by their local headers")

    def names(self) -> List[str]:
        return list(self.members)

    def __contains__(self, name: str) -> bool:
        return name in self.members

    def chunks(self, name: str) -> Iterator[bytes]:
        """The expanded bytes of a member, in chunks, within the limits (problems reported, never raised)."""
        ctx = self.ctx
        lim = ctx.limits
        m = self.members[name]
        if m.encrypted:
            ctx.fail("text.encrypted", "part %s is encrypted (a password-protected zip)" % name, part=name)
            return
        if (m.file_size and m.compress_size and m.compress_size > 0 and m.file_size > RATIO_FLOOR
                and m.file_size > lim.max_ratio * m.compress_size):
            ctx.report("text.zip_bomb", "part %s claims to expand %d bytes to %d (ratio %d > %d); not expanded"
                       % (name, m.compress_size, m.file_size, m.file_size // max(1, m.compress_size), lim.max_ratio),
                       part=name)
            return
        cap = min(lim.max_member_bytes, lim.max_total_bytes - self.total)
        produced = 0
        try:
            for chunk in self._raw_chunks(m):
                ctx.check_time()
                produced += len(chunk)
                if produced > cap:
                    keep = len(chunk) - (produced - cap)
                    self.total += keep
                    if keep > 0:
                        yield chunk[:keep]
                    ctx.report("text.member_too_large", "part %s expands beyond %d bytes; read up to the limit"
                               % (name, cap), part=name)
                    return
                if m.compress_size and m.compress_size > 0 and produced > RATIO_FLOOR \
                        and produced > lim.max_ratio * m.compress_size:
                    ctx.report("text.zip_bomb", "part %s expands more than %d times its compressed size; stopped"
                               % (name, lim.max_ratio), part=name)
                    return
                self.total += len(chunk)
                yield chunk
        except (Timeout, Full):
            raise
        except NotImplementedError as e:
            ctx.report("text.page_failed", "part %s uses an unsupported compression (%s)" % (name, e), part=name)
        except Exception as e:  # zlib.error, BadZipFile (CRC), EOF in a truncated member
            ctx.report("text.damaged", "part %s could not be%s expanded (%s: %s)"
                       % (name, " fully" if produced else "", type(e).__name__, e), part=name)

    def _raw_chunks(self, m: _Member) -> Iterator[bytes]:
        if self._zip is not None:
            with self._zip.open(m.info) as f:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        return
                    yield b
        # salvaged member: raw deflate or stored bytes from its local header on
        end = len(self.data) if m.compress_size < 0 else min(len(self.data), m.offset + m.compress_size)
        if m.compress_type == zipfile.ZIP_STORED:
            for i in range(m.offset, end, CHUNK):
                yield self.data[i:i + CHUNK]
            return
        if m.compress_type != zipfile.ZIP_DEFLATED:
            raise NotImplementedError("method %d" % m.compress_type)
        d = zlib.decompressobj(-15)
        for i in range(m.offset, end, CHUNK):
            out = d.decompress(self.data[i:i + CHUNK], CHUNK * 4)
            while out:
                yield out
                if d.eof:
                    return
                out = d.decompress(d.unconsumed_tail, CHUNK * 4) if d.unconsumed_tail else b""
            if d.eof:
                return
        if not d.eof:
            raise EOFError("the compressed data ends early")

    def read_small(self, name: str, cap: int = 4 << 20) -> Optional[bytes]:
        """A small member whole (rels, manifest), or None when absent, too large or unreadable."""
        if name not in self.members or self.members[name].file_size > cap:
            return None
        out = []
        n = 0
        for c in self.chunks(name):
            out.append(c)
            n += len(c)
            if n > cap:
                return None
        return b"".join(out)


class Forbidden(Exception):
    pass


class XmlHandler:
    """Base of the per-format XML walkers. Elements arrive by local name (namespaces dropped: every name a
    reader looks for is unambiguous inside the part it reads); attribute keys keep 'namespace-uri name'."""

    def start(self, tag: str, attrs: Dict[str, str]) -> None:
        pass

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass


def _forbid(*_args):
    raise Forbidden()


def parse_xml(chunks: Iterator[bytes], handler: XmlHandler, ctx: Context, part: str) -> bool:
    """Stream an XML part through handler. Returns False when parsing stopped on an error (reported)."""
    p = expat.ParserCreate(namespace_separator=" ")
    p.buffer_text = True
    p.buffer_size = CHUNK
    try:
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    except AttributeError:  # pragma: no cover - every CPython expat has it
        pass
    p.StartDoctypeDeclHandler = _forbid
    p.EntityDeclHandler = _forbid
    p.UnparsedEntityDeclHandler = _forbid
    p.ExternalEntityRefHandler = _forbid
    max_depth = ctx.limits.max_depth
    depth = [0, 0]   # current depth, depth at which skipping started (0: not skipping)

    names: Dict[str, str] = {}     # 'namespace local' -> 'local', computed once per distinct tag
    h_start, h_end = handler.start, handler.end

    def start(tag, attrs):
        depth[0] += 1
        if depth[1]:
            return
        if depth[0] > max_depth:
            depth[1] = depth[0]
            if not ctx.has("text.depth_limit"):
                ctx.report("text.depth_limit", "XML elements nested deeper than %d in %s; the deeper content was "
                           "skipped" % (max_depth, part), part=part)
            return
        name = names.get(tag)
        if name is None:
            name = names[tag] = tag.rsplit(" ", 1)[-1]
        h_start(name, attrs)

    def end(tag):
        if depth[1]:
            if depth[0] == depth[1]:
                depth[1] = 0
            depth[0] -= 1
            return
        depth[0] -= 1
        name = names.get(tag)
        if name is None:
            name = names[tag] = tag.rsplit(" ", 1)[-1]
        h_end(name)

    def data(text):
        if not depth[1]:
            handler.data(text)

    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = data
    fed = 0
    reported = len(ctx.problems)
    try:
        for chunk in chunks:
            ctx.check_time()
            fed += len(chunk)
            p.Parse(chunk, False)
        if not fed and len(ctx.problems) > reported:
            return False     # the part was not expanded (bomb, encryption, damage): already reported
        p.Parse(b"", True)
        return True
    except Forbidden:
        ctx.report("text.xml_forbidden", "%s declares a DOCTYPE or entities; not parsed further" % part, part=part)
        return False
    except expat.ExpatError as e:
        ctx.report("text.xml_malformed", "%s is not well-formed XML (%s); the text before the error is kept"
                   % (part, expat.ErrorString(e.code) if e.code else e), part=part)
        return False


def parse_member(zp: ZipParts, name: str, handler: XmlHandler) -> bool:
    return parse_xml(zp.chunks(name), handler, zp.ctx, name)


def xml_attr(attrs: Dict[str, str], local: str) -> Optional[str]:
    """An attribute by local name, whatever its namespace."""
    for k, v in attrs.items():
        if k == local or k.endswith(" " + local):
            return v
    return None
