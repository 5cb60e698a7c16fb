"""A byte-level MIME parser that keeps offsets, finds boundaries with bytes searches and decodes
transfer encodings at C speed.

parse_entities() walks the MIME tree of one message with an explicit stack (no recursion) and
returns one `part` record per entity, the problems found, and the items to look into next
(attached messages, attached files that are containers or emails). It never raises on bad input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from leaktriage.mail import charsets, headers, transfer
from leaktriage.content import digests as digesting, pages, types
from leaktriage.model.locator import child, part as part_locator, segment
from leaktriage.model.records import record

MAX_DEPTH = 64
MAX_PARTS = 10000
PREAMBLE_NOTICE = re.compile(
    rb"^\s*(this is a multi-?part message in mime format\.?|this is a message in mime format\.?|"
    rb"this is a multipart message in mime format\.?|this message is in mime format\.?.*|"
    rb"ceci est un message au format mime\.?.*|this is a multi-part message in mime format\.\s*"
    rb"--.*|[^\n]{0,120}mime[^\n]{0,120})?\s*$",
    re.I | re.S)

BODY_TYPES = ("text/plain", "text/html", "text/enriched", "text/richtext")


@dataclass
class Found:
    """Something inside a message the pipeline must look into: an attached message or a blob."""

    locator: str            # locator of the part (the new item shares it, or adds a segment)
    data: bytes
    kind: str               # "message" (message/rfc822 or an attached email) or "blob"
    root_path: str          # entity path of the attached message's root (for kind == message)
    loc_base: str           # locator the attached message's part paths hang from
    name: Optional[str] = None
    source: str = "rfc822"


@dataclass
class Entities:
    parts: List[dict] = field(default_factory=list)
    problems: List[dict] = field(default_factory=list)
    found: List[Found] = field(default_factory=list)
    attachments: int = 0
    attachment_names: List[str] = field(default_factory=list)
    codes: set = field(default_factory=set)


ProblemFn = Callable[..., dict]


def _eol_before(buf, i: int, lo: int) -> int:
    """Start of the line break that ends just before offset i (the break belongs to the delimiter)."""
    if i - 2 >= lo and buf[i - 2:i] == b"\r\n":
        return i - 2
    if i - 1 >= lo and buf[i - 1:i] in (b"\n", b"\r"):
        return i - 1
    return i


def find_delimiters(buf, bs: int, e: int, boundary: bytes) -> List[Tuple[int, int, bool]]:
    """Delimiter lines of `boundary` in buf[bs:e]: (line start, line end incl. EOL, is_close)."""
    delim = b"--" + boundary
    out: List[Tuple[int, int, bool]] = []
    pos = bs
    dl = len(delim)
    window = 32 << 20  # search a memory-mapped file window by window, releasing pages behind
    while True:
        i = -1
        while pos < e:
            stop = min(e, pos + window)
            i = buf.find(delim, pos, min(e, stop + dl))
            if i >= 0 or stop >= e:
                break
            pages.release(buf, pos, stop)
            pos = stop
        if i < 0:
            break
        if i != bs and buf[i - 1] not in (10, 13):
            pos = i + 1
            continue
        j = i + dl
        close = buf[j:j + 2] == b"--"
        # After the boundary: "--" (close), or white space / end of line (RFC 2046 lets a reader
        # ignore what follows). Any other character means a longer boundary: not ours.
        if not close and j < e and buf[j] not in (32, 9, 13, 10):
            pos = i + 1
            continue
        nl = buf.find(b"\n", j, e)
        line_end = e if nl < 0 else nl + 1
        out.append((i, line_end, close))
        pos = line_end
    return out


def _is_email(data: bytes) -> bool:
    from leaktriage.content.mailshape import looks_like_message
    return looks_like_message(data[:8192])


def parse_entities(buf, start: int, end: int, loc_base: str, root_path: str, msg_locator: str,
                   algorithms=("sha256",), problem: ProblemFn = None,
                   container_kind: Callable[[bytes], Optional[str]] = None,
                   first_fields: Optional[Tuple[list, int, int]] = None) -> Entities:
    """Parse the MIME entities of the message in buf[start:end].

    Offsets in the records are relative to `start`. `first_fields` may carry the already parsed
    top-level header block (fields, header end, body start) to avoid parsing it twice.
    """
    out = Entities()
    if problem is None:
        from leaktriage.model.problems import problem_record as problem
    root_depth = root_path.count(".")
    # stack of (entity start, entity end, path, default content type, parent is digest)
    stack: List[Tuple[int, int, str, str]] = [(start, end, root_path, "text/plain")]
    count = 0

    def prob(loc, code, offset=None, length=None, **detail):
        out.codes.add(code)
        out.problems.append(problem(loc, code, offset=offset, length=length, detail=detail or None))

    while stack:
        s, e, path, default_ct = stack.pop()
        count += 1
        loc = part_locator(loc_base, path)
        depth = path.count(".") - root_depth
        if first_fields is not None and s == start:
            fields, hdr_end, body_start = first_fields
        else:
            hdr_end, body_start = headers.find_header_end(buf, s, e)
            fields, stop, hprobs, _unixfrom = headers.parse_fields(buf, s, hdr_end, closed=body_start > hdr_end)
            if stop < hdr_end:
                body_start = stop
            for code, off, length, detail in hprobs:
                prob(loc, code, offset=None if off is None else off - start, length=length, **(detail or {}))
        ct_f = headers.get(fields, "content-type")
        cte_f = headers.get(fields, "content-transfer-encoding")
        cd_f = headers.get(fields, "content-disposition")
        cid_f = headers.get(fields, "content-id")
        desc_f = headers.get(fields, "content-description")
        ct_raw = None
        params: Dict[str, str] = {}
        raw_params: Dict[str, str] = {}
        ctype = default_ct
        if ct_f is not None:
            ct_raw, _cs8 = charsets.decode_header_bytes(ct_f.unfolded())
            main, params, raw_params, pp = headers.parse_params(ct_raw)
            for c in pp:
                prob(loc, c)
            if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", main or ""):
                ctype = main
            else:
                prob(loc, "mime.invalid_content_type", value=main)
                ctype = "text/plain"
        cte = None
        if cte_f is not None:
            cte = cte_f.unfolded().decode("latin-1").strip().lower() or None
            if cte and ";" in cte:
                cte = cte.split(";")[0].strip() or None
        disp = disp_raw = None
        dparams: Dict[str, str] = {}
        draw: Dict[str, str] = {}
        if cd_f is not None:
            disp_raw, _ = charsets.decode_header_bytes(cd_f.unfolded())
            disp, dparams, draw, pp = headers.parse_params(disp_raw)
            disp = disp or None
            for c in pp:
                prob(loc, c)
        filename = filename_raw = filename_from = None
        for src, d, r in (("filename", dparams, draw), ("name", params, raw_params)):
            if d.get(src):
                filename, filename_raw, filename_from = d[src], r.get(src), src
                break
        rec = record("part", loc, message=msg_locator, path=path, depth=depth, content_type=ctype,
                     content_type_raw=ct_raw, params=params or None, cte=cte, disposition=disp,
                     disposition_raw=disp_raw, filename=filename, filename_raw=filename_raw,
                     filename_from=filename_from,
                     content_id=cid_f.unfolded().decode("utf-8", "replace") if cid_f else None,
                     description=headers.decode_value(desc_f.raw)[0] if desc_f else None,
                     offset=s - start, header_length=body_start - s, body_offset=body_start - start,
                     body_length=e - body_start)
        out.parts.append(rec)
        top = ctype.split("/")[0]
        if top == "multipart":
            boundary = params.get("boundary")
            if not boundary:
                prob(loc, "mime.no_boundary")
            elif depth >= MAX_DEPTH or count + len(stack) >= MAX_PARTS:
                prob(loc, "mime.depth_limit" if depth >= MAX_DEPTH else "mime.parts_limit",
                     offset=body_start - start, length=e - body_start)
            else:
                if cte not in transfer.IDENTITY:
                    prob(loc, "mime.multipart_not_multipart", cte=cte)
                _multipart(buf, start, body_start, e, boundary, rec, path, ctype, stack, loc, prob,
                           algorithms)
                continue
            # fall through: treat as an opaque leaf
        _leaf(buf, start, body_start, e, rec, ctype, cte, params, filename, disp, loc, loc_base, path,
              prob, out, algorithms, container_kind)
    return out


def _sha(buf, a: int, b: int) -> str:
    return digesting.digests(memoryview(buf)[a:b], ("sha256",))["sha256"]


def _multipart(buf, start, bs, e, boundary, rec, path, ctype, stack, loc, prob, algorithms):
    delims = find_delimiters(buf, bs, e, boundary.encode("utf-8", "surrogateescape"))
    if e - bs > STREAM_THRESHOLD:
        pages.release(buf, bs, e)  # the search touched every page of a memory-mapped file
    rec["boundary"] = boundary
    if not delims:
        prob(loc, "mime.start_boundary_not_found", offset=bs - start, length=e - bs)
        rec["children"] = 0
        if e > bs:
            rec["preamble"] = {"offset": bs - start, "length": e - bs, "sha256": _sha(buf, bs, e),
                               "data": bool(bytes(buf[bs:min(e, bs + HEAD)]).strip()) or e - bs > HEAD}
        return
    first = delims[0][0]
    pre_end = _eol_before(buf, first, bs)
    if pre_end > bs:
        data = pre_end - bs > HEAD or not PREAMBLE_NOTICE.fullmatch(bytes(buf[bs:pre_end]))
        rec["preamble"] = {"offset": bs - start, "length": pre_end - bs,
                           "sha256": _sha(buf, bs, pre_end), "data": data}
        if data:
            prob(loc, "mime.preamble_data", offset=bs - start, length=pre_end - bs)
    # A close delimiter followed by more delimiters: a nested multipart reused its parent's boundary
    # (seen in real mail). The parts after it are read, as Python's email package does; the bytes
    # between such a close line and the next delimiter belong to no entity.
    if any(d[2] for d in delims[:-1]):
        prob(loc, "mime.boundary_reused", offset=delims[0][0] - start)
    children = []
    for idx in range(len(delims)):
        line_start, line_end, close = delims[idx]
        if close:
            continue
        if idx + 1 < len(delims):
            nxt = delims[idx + 1][0]
            c_end = _eol_before(buf, nxt, line_end)
        else:
            c_end = e
        children.append((line_start, line_end, c_end))
    last_close = delims[-1][2]
    if not last_close:
        prob(loc, "mime.close_boundary_not_found", offset=e - start)
    else:
        ep_start = delims[-1][1]
        if ep_start < e:
            data = e - ep_start > HEAD or bool(bytes(buf[ep_start:e]).strip())
            rec["epilogue"] = {"offset": ep_start - start, "length": e - ep_start,
                               "sha256": _sha(buf, ep_start, e), "data": data}
            if data:
                prob(loc, "mime.epilogue_data", offset=ep_start - start, length=e - ep_start)
    rec["children"] = len(children)
    default_child = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
    for n in range(len(children), 0, -1):
        _ls, le, ce = children[n - 1]
        stack.append((le, max(le, ce), "%s.%d" % (path, n), default_child))


STREAM_THRESHOLD = 32 << 20  # encoded bodies larger than this are decoded and hashed in chunks
HEAD = 64 * 1024

# libmagic's answer and the document metadata depend only on the content: in a leak the same
# attachment sits in the sender's and every recipient's mailbox (14% of the parts of a generated
# dump), so they are remembered per process by the content's SHA-256 (bounded; cleared when full)
_BY_CONTENT: Dict[tuple, object] = {}
_BY_CONTENT_MAX = 4096


def _by_content(key: Optional[tuple], compute: Callable[[], object]):
    if key is None or key[0] is None:
        return compute()
    hit = _BY_CONTENT.get(key, _BY_CONTENT)
    if hit is _BY_CONTENT:
        if len(_BY_CONTENT) >= _BY_CONTENT_MAX:
            _BY_CONTENT.clear()
        hit = _BY_CONTENT[key] = compute()
    return hit


def _stream(buf, bs, e, cte, algorithms):
    """(size, digests, first HEAD decoded bytes, decoder, problems) without holding the body, or None."""
    mh = digesting.MultiHash(algorithms)
    head = bytearray()
    stats: dict = {}
    try:
        for chunk in transfer.iter_decoded(buf, bs, e, cte, stats):
            mh.update(chunk)
            if len(head) < HEAD:
                head += chunk[:HEAD - len(head)]
    except transfer.StreamAbort:
        return None
    c = (cte or "").strip().lower()
    decoder = c if c in ("base64", "quoted-printable") else "identity"
    probs = [("qp.invalid_escape", {"count": stats["qp_invalid"]})] if stats.get("qp_invalid") else []
    if stats.get("b64_invalid"):     # what transfer.decode() reports for the same body
        probs = [("base64.invalid_characters", {"count": stats["b64_invalid"]})]
        if stats.get("b64_kept"):
            decoder = "base64-repaired"
    return mh.size, mh.result(), bytes(head), decoder, probs


def _leaf(buf, start, bs, e, rec, ctype, cte, params, filename, disp, loc, loc_base, path, prob, out,
          algorithms, container_kind):
    streamed = _stream(buf, bs, e, cte, algorithms) if e - bs > STREAM_THRESHOLD else None
    if streamed is not None:
        size, digests, head, decoder, tprobs = streamed
        data = None

        def full():
            return b"".join(transfer.iter_decoded(buf, bs, e, cte))
    else:
        raw = bytes(buf[bs:e])
        data, decoder, tprobs = transfer.decode(raw, cte)
        del raw
        size, digests, head = len(data), digesting.digests(data, algorithms), data

        def full():
            return data
    for code, detail in tprobs:
        prob(loc, code, offset=bs - start, length=e - bs, **detail)
    rec["decoder"] = decoder
    rec["size"] = size
    rec.update(digests)
    sha = digests.get("sha256")
    hint = ctype in ("text/plain", "text/html", "message/rfc822")
    mt = _by_content((sha, "magic", hint), lambda: types.magic_type(head, text_hint=hint))
    rec["magic"] = mt
    mismatch = []
    if types.declared_mismatch(ctype, mt):
        mismatch.append("declared-type")
        prob(loc, "type.mismatch_declared", declared=ctype, detected=mt)
    if types.extension_mismatch(filename, mt):
        mismatch.append("extension")
        prob(loc, "type.mismatch_extension", filename=filename, detected=mt)
    if mismatch:
        rec["mismatch"] = mismatch
    top = ctype.split("/")[0]
    is_body_text = ctype in BODY_TYPES and not filename and disp != "attachment"
    if top == "text":
        declared = params.get("charset")
        # a streamed (very large) text part is judged on its first 64 KiB
        tr = charsets.decode_text(data if data is not None else head[:HEAD - 8], declared)
        rec["charset_declared"] = declared
        rec["charset"] = tr.charset
        rec["charset_source"] = tr.source
        if tr.method:
            rec["charset_method"] = tr.method
        if tr.confidence is not None and tr.method == "chardet":
            rec["charset_confidence"] = tr.confidence
        rec["replaced_bytes"] = tr.replaced_bytes
        for code in tr.problems:
            prob(loc, code, declared=declared, used=tr.charset)
    is_message = ctype in ("message/rfc822", "message/global")
    attachment = (not is_body_text) and not (ctype == "text/plain" and not filename and disp != "attachment")
    if ctype.startswith("multipart/"):
        attachment = False  # an opaque multipart (no boundary / too deep) is not an attachment
    rec["attachment"] = bool(attachment)
    if attachment and data and (mt == "application/pdf" or mt in types.ZIP_FAMILY or mt in types.OLE_FAMILY):
        from leaktriage.content.docmeta import docmeta
        dm = _by_content((sha, "docmeta", mt), lambda: docmeta(data, mt))
        if dm:
            rec["docmeta"] = dict(dm)
    if attachment:
        out.attachments += 1
        if filename:
            out.attachment_names.append(filename)
    if is_message:
        if head.strip():
            if not _is_email(head):
                prob(loc, "mime.message_not_message")
            out.found.append(Found(loc, full(), "message", path + ".1", loc_base, filename, "rfc822"))
    elif attachment and size:
        kind = container_kind(head[:65536]) if container_kind else None
        if kind == "message" or (kind is None and filename and filename.lower().endswith(".eml")
                                 and _is_email(head)):
            out.found.append(Found(loc, full(), "message", path + ".1", loc_base, filename, "attachment"))
        elif kind:
            out.found.append(Found(loc, full(), "blob", path, loc_base, filename))
    # a BinHex 4.0 file: declared, named .hqx, or announced by its first line inside text
    if data is not None and (ctype in transfer.BINHEX_TYPES or (filename or "").lower().endswith(".hqx")
                             or (top == "text" and b"BinHex" in data)):
        hqx = transfer.find_binhex(data, declared=ctype in transfer.BINHEX_TYPES
                                   or (filename or "").lower().endswith(".hqx"))
        if hqx is not None:
            _binhex(hqx, rec, loc, path, prob, out, algorithms, container_kind)
    # uuencoded files inside text
    if top == "text" and data is not None and b"begin " in data:
        n = 0
        for off, length, mode, name, udata, uprobs in transfer.find_uuencoded(data):
            if n == transfer.MAX_UU_FILES:
                prob(loc, "uu.too_many", offset=off, max=transfer.MAX_UU_FILES)
                break
            n += 1
            uloc = child(loc, segment("uu", n))
            fname, _ = charsets.decode_header_bytes(name)
            umt = types.magic_type(udata)
            urec = record("part", uloc, message=rec["message"], path=path, depth=rec["depth"],
                          content_type="application/octet-stream", decoder="uuencode", filename=fname,
                          filename_from="uuencode", uu_offset=off, size=len(udata), magic=umt,
                          attachment=True, **digesting.digests(udata, algorithms))
            if types.extension_mismatch(fname, umt):
                urec["mismatch"] = ["extension"]
                prob(uloc, "type.mismatch_extension", filename=fname, detected=umt)
            for code, detail in uprobs:
                prob(uloc, code, offset=off, length=length, **detail)
            out.parts.append(urec)
            out.attachments += 1
            out.attachment_names.append(fname)
            kind = container_kind(udata[:65536]) if container_kind and udata else None
            if kind == "message":
                out.found.append(Found(uloc, udata, "message", "1", uloc, fname, "attachment"))
            elif kind:
                out.found.append(Found(uloc, udata, "blob", path, uloc, fname))


def _binhex(hqx, rec, loc, path, prob, out, algorithms, container_kind):
    """Records of the forks of a BinHex file decoded from entity `loc`: one part per fork (the data
    fork always, the resource fork when not empty), as uuencoded files are, at loc!hqx:data and
    loc!hqx:rsrc; problems of the whole file at the entity, of a fork at the fork."""
    name = hqx.name.decode("mac-roman")
    meta = {"offset": hqx.offset, "name": name, "type": hqx.type.decode("mac-roman"),
            "creator": hqx.creator.decode("mac-roman"), "flags": hqx.flags}
    forks = {}
    for fork, fdata in (("data", hqx.data), ("rsrc", hqx.rsrc)):
        if fdata is None or (fork == "rsrc" and not fdata):
            continue
        floc = child(loc, segment("hqx", fork))
        forks[fork] = floc
        # a resource fork is named as macOS names it, so no extension is judged against its content
        fname = name if fork == "data" else name + "/..namedfork/rsrc"
        fmt = types.magic_type(fdata)
        frec = record("part", floc, message=rec["message"], path=path, depth=rec["depth"],
                      content_type="application/octet-stream", decoder="binhex", filename=fname,
                      filename_from="binhex", binhex=dict(meta, fork=fork), size=len(fdata), magic=fmt,
                      attachment=True, **digesting.digests(fdata, algorithms))
        if types.extension_mismatch(fname, fmt):
            frec["mismatch"] = ["extension"]
            prob(floc, "type.mismatch_extension", filename=fname, detected=fmt)
        out.parts.append(frec)
        out.attachments += 1
        out.attachment_names.append(fname)
        kind = container_kind(fdata[:65536]) if container_kind and fdata else None
        if kind == "message":
            out.found.append(Found(floc, fdata, "message", "1", floc, fname, "attachment"))
        elif kind:
            out.found.append(Found(floc, fdata, "blob", path, floc, fname))
    for code, fork, detail in hqx.problems:
        prob(forks.get(fork, loc), code, offset=hqx.offset, length=hqx.length, **detail)
