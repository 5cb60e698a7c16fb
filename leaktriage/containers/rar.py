"""RAR through rarfile: stored members are read without any binary; compressed ones need an external
unrar/unar/bsdtar (each member without one gets rar.unsupported).
"""
from __future__ import annotations

import datetime as _dt
from typing import Iterator

from leaktriage.containers.base import Child, Context, Problem, iso_datetime
from leaktriage.containers.streams import (OUT_CHUNK, Item, Names, Truncated, expand, io_stream,
                                           limit_problem_for_total)

def read_rar(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_rar(data, ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("rar.damaged", "unexpected error while reading the rar archive: %s: %s" % (type(e).__name__, e))


def rar_tool_available() -> bool:
    try:
        import rarfile
        rarfile.tool_setup()
        return True
    except Exception:  # noqa: BLE001
        return False


def _read_rar(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        import rarfile
    except ImportError:  # pragma: no cover
        yield Problem("rar.unsupported", "rarfile is not installed; the rar archive was not read")
        return
    have_tool = rar_tool_available()
    try:
        rf = rarfile.RarFile(io_stream(data), errors="strict")
    except rarfile.NeedFirstVolume as e:
        yield Problem("rar.unsupported", "a later volume of a multi-volume rar: %s" % e)
        return
    except rarfile.PasswordRequired as e:
        yield Problem("rar.encrypted", "the rar headers are encrypted (member names hidden): %s" % e)
        return
    except Exception as e:  # noqa: BLE001
        # a damaged archive: retry leniently to list what can be listed
        try:
            rf = rarfile.RarFile(io_stream(data), errors="ignore")
            yield Problem("rar.damaged", "rar archive damaged: %s: %s; the readable members were listed" % (type(e).__name__, e))
        except Exception as e2:  # noqa: BLE001
            yield Problem("rar.damaged", "not a readable rar archive: %s: %s" % (type(e2).__name__, e2), offset=0)
            return
    lim = ctx.limits
    names = Names("rar", "rar")
    unsupported = 0
    # each member is handed on when the next is due: the reader keeps none of them (they were all
    # kept until the archive was done, so memory grew with the member count)
    prev = None
    count = 0
    for idx, info in enumerate(rf.infolist()):
        if prev is not None:
            yield prev
            prev = None
        if info.is_dir():
            continue
        count += 1
        if count > lim.max_members:
            yield Problem("rar.too_many_members", "more than max_members (%d) members; the rest were not listed"
                          % lim.max_members, detail={"limit": lim.max_members})
            break
        name = info.filename
        meta: dict = {"index": idx, "size": info.file_size, "compressed_size": info.compress_size,
                      "encrypted": bool(info.needs_password()), "method": info.compress_type}
        if info.CRC is not None:
            meta["crc32"] = "%08x" % (info.CRC & 0xFFFFFFFF)
        mt = getattr(info, "mtime", None)
        if isinstance(mt, _dt.datetime):
            meta["mtime"] = iso_datetime(mt)
        elif info.date_time:
            try:
                meta["mtime"] = _dt.datetime(*info.date_time).strftime("%Y-%m-%dT%H:%M:%S")
                meta["mtime_source"] = "MS-DOS (local time, zone unknown)"
            except (TypeError, ValueError):
                pass
        problems: list = []
        names.flag(name, meta, problems)
        seg = names.segment(name, meta, problems)
        ch = prev = Child(segment=seg, name=name, data=None, meta=meta, problems=problems)
        if info.needs_password():
            problems.append(Problem("rar.encrypted", "member %r is encrypted; content not decrypted" % name))
            continue
        stored = info.compress_type == rarfile.RAR_M0
        if not stored and not have_tool:
            unsupported += 1
            problems.append(Problem("rar.unsupported", "member %r is compressed (method %d); no unrar/unar/bsdtar binary to decompress it"
                                    % (name, info.compress_type)))
            continue
        if info.file_size > lim.max_member_size:
            problems.append(Problem("rar.member_too_large", "member %r declares %d bytes > max_member_size (%d); not expanded"
                                    % (name, info.file_size, lim.max_member_size), detail={"limit": lim.max_member_size}))
            continue
        tp = limit_problem_for_total(ctx, "rar", repr(name), inflating=not stored)
        if tp:
            problems.append(tp)
            continue
        try:
            f = rf.open(info)
        except Exception as e:  # noqa: BLE001
            code = "rar.unsupported" if isinstance(e, rarfile.RarCannotExec) else "rar.member_unreadable"
            problems.append(Problem(code, "member %r: %s: %s" % (name, type(e).__name__, e)))
            continue
        res = expand(_rar_chunks(f), info.compress_size, ctx, "rar", "member %r" % name, ratio=not stored)
        if res.problem:
            problems.append(res.problem)
        else:
            ch.data = res.data
            if res.truncated:
                meta["truncated"] = True
                problems.append(Problem("rar.member_truncated", "member %r ends early (%s); %d bytes kept"
                                        % (name, res.error, len(res.data or b""))))
    if prev is not None:
        yield prev
        prev = ch = None
    if unsupported:
        yield Problem("rar.unsupported", "%d compressed rar member(s) need an unrar/unar/bsdtar binary, none is installed; "
                      "they are listed without content" % unsupported, detail={"members": unsupported})


def _rar_chunks(f) -> Iterator[bytes]:
    try:
        import rarfile
        errs: tuple = (rarfile.Error,)
    except ImportError:  # pragma: no cover
        errs = ()
    while True:
        try:
            b = f.read(OUT_CHUNK)
        except errs as e:  # type: ignore[misc]
            raise Truncated("%s: %s" % (type(e).__name__, e))
        if not b:
            return
        yield b
