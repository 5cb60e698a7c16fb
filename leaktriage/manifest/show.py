"""`leaktriage show`: one item of a manifest, for people (Rich) or as its records; --raw bytes, checked."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from leaktriage.errors import DumpError, IntegrityError, UsageError
from leaktriage.model import locator as L
from leaktriage.model.records import is_entity
from leaktriage.manifest.reader import Manifest
from leaktriage.console import human_bytes, thousands

LIMIT = 200  # children listed for a container (the rest are counted)


@dataclass
class ShownItem:
    locator: str
    records: List[dict] = field(default_factory=list)      # the item's own records (file, message, part)
    parts: List[dict] = field(default_factory=list)        # MIME entities of a message (nested included)
    problems: List[dict] = field(default_factory=list)
    children: List[dict] = field(default_factory=list)     # members / messages directly inside a file
    more_children: int = 0
    duplicates: List[dict] = field(default_factory=list)
    nested: List[dict] = field(default_factory=list)       # messages attached inside a message (X#1.2, X#1.2.1.3)
    members: List[dict] = field(default_factory=list)      # files inside its attachments (X#1.3!zip:a.pdf)

    def get(self, kind: str) -> Optional[dict]:
        for r in self.records:
            if r["record"] == kind:
                return r
        return None


def collect(m: Manifest, loc: str) -> ShownItem:
    """One streaming pass: the item's records, its parts, problems, direct children, duplicate groups.

    Lines that cannot concern the item are skipped before JSON decoding (the locator must appear in
    them), but every line is still read, hashed and checked for truncation."""
    item = ShownItem(loc)
    needle = json.dumps(loc, ensure_ascii=False)[1:-1].encode("utf-8")
    hash_prefix = loc + "#"
    bang_prefix = loc + "!"
    for line, rec in m.records(raw=True, want=lambda line: needle in line):
        kind = rec["record"]
        rloc = rec["locator"]
        if rloc == loc and kind in ("file", "message", "part", "duplicate_group"):
            item.records.append(rec)
            continue
        if kind == "part":
            msg = rec.get("message", "")
            if msg == loc or (msg.startswith(hash_prefix) and "!" not in msg[len(loc):]) or \
                    (rloc.startswith(hash_prefix) and "!" not in rloc[len(loc):].split("!uu:")[0].split("!hqx:")[0]):
                item.parts.append(rec)
            continue
        if kind == "problem":
            if rloc == loc or rloc.startswith(hash_prefix) or rloc.startswith(bang_prefix):
                item.problems.append(rec)
            continue
        if kind == "duplicate_group":
            if loc in (rec.get("members") or ()):
                item.duplicates.append(rec)
            continue
        if kind == "message" and rloc.startswith(hash_prefix) and "!" not in rloc[len(loc):]:
            item.nested.append(rec)
            continue
        if kind == "file" and rloc.startswith(hash_prefix) and len(item.members) < LIMIT:
            item.members.append(rec)
            continue
        if kind in ("file", "message") and rec.get("parent") == loc and rloc != loc:
            if len(item.children) < LIMIT:
                item.children.append(rec)
            else:
                item.more_children += 1
    return item


def suggest(m: Manifest, loc: str) -> str:
    """A hint when a locator is not found (a close locator, or the usual quoting mistake)."""
    try:
        L.parse(loc)
    except L.LocatorError as exc:
        return " (%s)" % exc
    base = loc.split("!")[0].split("#")[0]
    needle = json.dumps(base, ensure_ascii=False)[1:-1].encode("utf-8")
    for line, rec in m.records(raw=True, want=lambda line: needle in line):
        if needle in line and rec["record"] in ("file", "message") and rec["locator"].startswith(base):
            return "; did you mean %r? (quote locators in the shell: they hold ! and #)" % rec["locator"]
    return "; quote locators in the shell ('a.mbox!mbox:0'), they hold ! and #"


# -- --raw ------------------------------------------------------------------------------------------

def expected_digest(item: ShownItem) -> Optional[str]:
    # a message's stored bytes, a part's decoded body, a file's content: resolve() returns exactly these
    for kind in ("message", "part", "file"):
        r = item.get(kind)
        if r and r.get("sha256"):
            return r["sha256"]
    return None


def raw_bytes(item: ShownItem, root: str) -> bytes:
    from leaktriage.manifest.resolver import ResolveError, resolve
    want = expected_digest(item)
    if not want:
        raise UsageError("the manifest records no SHA-256 for %s (a multipart container, a link or an unread "
                         "item): there is nothing to check its bytes against" % item.locator)
    try:
        data = resolve(root, item.locator)
    except ResolveError as exc:
        raise DumpError("cannot read %s from the dump %s: %s" % (item.locator, root, exc))
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise IntegrityError("refusing to write %s: its bytes in %s have SHA-256 %s but the manifest records %s "
                             "(the dump changed since the scan; run leaktriage verify)"
                             % (item.locator, root, got, want))
    return data


# -- --text: the message as a person reads it ---------------------------------------------------------

MAX_NESTED = 8      # attached messages shown inline, at most this deep


@dataclass
class Readable:
    text: str
    notes: List[tuple] = field(default_factory=list)   # (code, severity, locator, message) for stderr
    failed: bool = False                                # an attachment whose text could not be read at all


def readable(item: ShownItem, root: str) -> Readable:
    """`show --text`: a message as a person reads it (main headers, body, attached messages inline,
    attachments with types, sizes and locators, DKIM verdicts and indicators one per line), or the
    extracted text of an attachment or file. Bytes come through the resolver, checked against the
    manifest (ItemChanged: exit 5; ResolveError: exit 6)."""
    from leaktriage.manifest.resolver import Resolver
    resolver = Resolver(root)
    msg = item.get("message")
    if msg is None:
        return _document_text(item, resolver)
    out: List[str] = []
    notes: List[tuple] = []
    parts_of: Dict[str, List[dict]] = {}
    for p in item.parts:
        parts_of.setdefault(p.get("message"), []).append(p)
    nested = {r["locator"]: r for r in item.nested}
    _message_text(msg, parts_of, nested, resolver, out, notes, 0)
    atts = [p for p in item.parts if p.get("attachment")]
    if atts:
        out.append("")
        out.append("Attachments (%d):" % len(atts))
        members = {}
        for f in item.members:
            members.setdefault(f.get("parent"), []).append(f)
        for p in sorted(atts, key=_path_key):
            out.append("  " + _attachment_line(p))
            for f in members.get(p["locator"], ()):
                out.append("      inside: %s  %s  %s" % ((f.get("path") or "").rpartition("/")[2] or "?",
                                                         f.get("magic") or "?", human_bytes(f.get("size", 0))))
                out.append("              %s" % f["locator"])
    out.append("")
    for sig in msg.get("dkim") or ():
        out.append("DKIM: %s  d=%s s=%s%s" % (sig.get("verdict"), sig.get("d"), sig.get("s"),
                                               "  (%s)" % sig["reason"] if sig.get("reason") else ""))
    if not msg.get("dkim"):
        out.append("DKIM: not signed" if "dkim" in msg or "dkim_summary" in msg or _analysed(msg) else
                   "DKIM: not analysed in this manifest")
    for ind in msg.get("indicators") or ():
        out.append("Indicator: %s (%s): %s" % (ind.get("code"), ind.get("severity"),
                                              " ".join(str(ind.get("explanation") or "").split())))
    for d in item.duplicates:
        if d.get("kind") == "canonical":
            others = [x for x in d.get("members") or () if x != item.locator]
            out.append("Copies: %d in all; the others: %s" % (d.get("count", 0), "; ".join(others)))
    out.append("Locator: %s" % item.locator)
    return Readable("\n".join(out) + "\n", notes)


def _analysed(msg: dict) -> bool:
    return any(k in msg for k in ("indicators", "arc", "received"))


def _path_key(p: dict):
    return [int(x) for x in (p.get("path") or "1").split(".") if x.isdigit()] + [1 if "uu_offset" in p else 0]


def _attachment_line(p: dict) -> str:
    bits = [p.get("path") or "?", p.get("magic") or p.get("content_type") or "?"]
    if p.get("filename"):
        bits.append('"%s"' % p["filename"])
    bits.append(human_bytes(p.get("size", 0)))
    if p.get("mismatch"):
        bits.append("(declared %s: %s)" % (p.get("content_type"), ", ".join(p["mismatch"]) + " mismatch"))
    return "  ".join(bits) + "\n      " + p["locator"]


def _message_text(msg: dict, parts_of: Dict[str, List[dict]], nested: Dict[str, dict], resolver, out: List[str],
                  notes: List[tuple], depth: int) -> None:
    from leaktriage.manifest.mailtext import message_body
    loc = msg["locator"]
    if depth:
        out.append("")
        out.append("---------- Attached message %s ----------" % loc)
    for label, key in (("From", "from"), ("Sender", "sender"), ("To", "to"), ("Cc", "cc"), ("Bcc", "bcc"),
                       ("Reply-To", "reply_to")):
        if msg.get(key):
            out.append("%-9s%s" % (label + ":", _addr(msg[key])))
    date = msg.get("date_raw") or msg.get("date")
    out.append("%-9s%s" % ("Date:", (date or "(none)") + ("  (%s)" % msg["date"] if msg.get("date") and
                                                            msg.get("date_raw") else "")))
    out.append("%-9s%s" % ("Subject:", msg.get("subject") if msg.get("subject") is not None else "(none)"))
    out.append("")
    data = resolver.message(msg, unquoted=True)
    body = message_body(data, parts_of.get(loc, []))
    for n in body.notes:
        notes.append((n.code, n.severity, n.locator, n.message))
    if body.html_only:
        notes.append(("html", "info", loc, "no text/plain part: the text is the HTML part turned into text"))
    out.append(body.text if body.text else "(no text in this message)")
    if depth >= MAX_NESTED:
        return
    for p in sorted(parts_of.get(loc, []), key=_path_key):
        inner = nested.get(p["locator"])
        if inner is not None and inner["locator"] != loc:
            _message_text(inner, parts_of, nested, resolver, out, notes, depth + 1)


def _document_text(item: ShownItem, resolver) -> Readable:
    """The extracted text of an attachment (part record) or a file / archive member (file record)."""
    from leaktriage.text import extract_text
    rec = item.get("part") or item.get("file")
    if rec is None or not rec.get("sha256"):
        raise UsageError("%s has no bytes of its own to read text from (a multipart container, a link or an "
                         "unread item)" % item.locator)
    data = resolver.part(rec)
    name = rec.get("filename") or (rec.get("path") or "").rpartition("/")[2] or None
    r = extract_text(data, content_type=rec.get("content_type"), magic=rec.get("magic"), filename=name)
    notes = [(p.code, p.severity, item.locator, p.message) for p in r.problems]
    if r.text is None:
        return Readable("", notes + [("status", "error", item.locator, "no text: %s (%s)" % (r.status, r.format))],
                        failed=True)
    text = r.text if r.text.endswith("\n") or not r.text else r.text + "\n"
    return Readable(text, notes)


def page(text: str, stream, use_pager: bool) -> None:
    """Write text to stream (binary stdout) as UTF-8, through $PAGER (default less) when asked and
    stdout is a terminal; a pager that cannot be started is skipped."""
    import os
    import shlex
    import signal
    import subprocess
    data = text.encode("utf-8", "surrogateescape")
    cmd = os.environ.get("PAGER", "less") if use_pager else ""
    argv = shlex.split(cmd) if cmd.strip() else []
    if argv and argv[0] != "cat":
        env = dict(os.environ)
        env.setdefault("LESS", "FRX")           # quit when it fits one screen, keep colours, no screen clear
        env.setdefault("LESSCHARSET", "utf-8")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
        except OSError:
            proc = None
        if proc is not None:
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the pager's
            try:
                try:
                    proc.stdin.write(data)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                proc.wait()
            finally:
                signal.signal(signal.SIGINT, old)
            return
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        pass


# -- output -----------------------------------------------------------------------------------------

def json_lines(item: ShownItem) -> List[str]:
    out = []
    for r in item.records + item.parts + item.problems + item.children + item.duplicates:
        out.append(json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    return out


def _addr(lst) -> str:
    out = []
    for a in lst or ():
        if a.get("name") and a.get("address"):
            out.append("%s <%s>" % (a["name"], a["address"]))
        else:
            out.append(a.get("address") or a.get("name") or "")
    return ", ".join(out)


def _esc(s) -> str:
    from rich.markup import escape
    return escape("" if s is None else str(s))


def _part_label(p: dict) -> str:
    bits = ["[bold]%s[/]" % _esc(p.get("path")), _esc(p.get("content_type"))]
    if p.get("filename"):
        bits.append('"%s"' % _esc(p["filename"]))
    if "size" in p:
        bits.append(human_bytes(p["size"]))
    if p.get("magic") and p.get("magic") != p.get("content_type"):
        bits.append("detected %s" % _esc(p["magic"]))
    if p.get("charset"):
        bits.append("charset %s (%s)" % (_esc(p["charset"]), _esc(p.get("charset_source"))))
    if p.get("attachment"):
        bits.append("[cyan]attachment[/]")
    if p.get("mismatch"):
        bits.append("[red]mismatch: %s[/]" % _esc(", ".join(p["mismatch"])))
    if "uu_offset" in p:
        bits.append("uuencoded")
    if "binhex" in p:
        bits.append("BinHex %s fork" % p["binhex"].get("fork"))
    if p.get("sha256"):
        bits.append("[dim]sha256 %s[/]" % p["sha256"])
    return "  ".join(bits)


def _tree(parts: List[dict], root_label: str):
    from rich.tree import Tree
    tree = Tree(root_label)
    nodes: Dict[str, object] = {}

    def key(p):
        path = p.get("path", "1")
        return [int(x) for x in path.split(".") if x.isdigit()] + [0 if is_entity(p) else 1]

    for p in sorted(parts, key=key):
        path = p.get("path", "1")
        if not is_entity(p):
            parent = nodes.get(path, tree)
        else:
            parent = nodes.get(path.rpartition(".")[0], tree) if "." in path else tree
        node = parent.add(_part_label(p))  # type: ignore[attr-defined]
        if is_entity(p):
            nodes[path] = node
    return tree


def render(item: ShownItem, console, headers: bool = True) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich import box

    msg = item.get("message")
    f = item.get("file")
    part = item.get("part")
    grp = item.get("duplicate_group")
    if grp and not (msg or f or part):
        console.print("[bold]Duplicate group[/] (%s, %d copies), SHA-256 %s" % (
            _esc(grp.get("kind")), grp.get("count", 0), _esc(grp.get("digest"))))
        t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        t.add_column("Member", overflow="fold")
        for mloc in grp.get("members") or ():
            t.add_row(_esc(mloc))
        console.print(t)
        return
    g = Table.grid(padding=(0, 2))
    g.add_column(style="bold", no_wrap=True)
    g.add_column(overflow="fold")
    g.add_row("Locator", _esc(item.locator))
    kinds = [r["record"] for r in item.records]
    g.add_row("Records", ", ".join(kinds))
    if msg:
        for label, key in (("Custodian", "custodian"), ("Mailbox", "mailbox"), ("Source", "source")):
            if msg.get(key):
                g.add_row(label, _esc(msg[key]))
        g.add_row("Date", _esc(msg.get("date") or "(none)") + ("  [dim](%s)[/]" % _esc(msg["date_raw"])
                                                             if msg.get("date_raw") else ""))
        for label, key in (("From", "from"), ("Sender", "sender"), ("To", "to"), ("Cc", "cc"), ("Bcc", "bcc"),
                           ("Reply-To", "reply_to")):
            if msg.get(key):
                g.add_row(label, _esc(_addr(msg[key])))
        g.add_row("Subject", _esc(msg.get("subject") or "(none)"))
        if msg.get("message_id"):
            g.add_row("Message-ID", _esc(msg["message_id"]))
        g.add_row("Size", "%s bytes, %s line endings" % (thousands(msg.get("length", 0)), msg.get("line_endings", "?")))
        g.add_row("SHA-256", msg.get("sha256", ""))
        if msg.get("unquoted_sha256"):
            g.add_row("Unquoted", msg["unquoted_sha256"])
        g.add_row("Canonical", msg.get("canonical_sha256", ""))
        if msg.get("dkim_summary") or msg.get("dkim"):
            g.add_row("DKIM", _esc(msg.get("dkim_summary") or ", ".join(
                str(d.get("verdict")) for d in msg.get("dkim") or ())))
        if msg.get("reconstructed"):
            g.add_row("Note", "[yellow]reconstructed by leaktriage from Outlook properties[/]")
    if part and not msg:
        for label, key in (("Message", "message"), ("Type", "content_type"), ("Detected", "magic"),
                           ("File name", "filename"), ("Disposition", "disposition"), ("Encoding", "cte"),
                           ("Charset", "charset")):
            if part.get(key):
                g.add_row(label, _esc(part[key]))
        if "size" in part:
            g.add_row("Size", "%s bytes (decoded)" % thousands(part["size"]))
        if part.get("sha256"):
            g.add_row("SHA-256", part["sha256"])
        if part.get("mismatch"):
            g.add_row("Mismatch", "[red]%s[/]" % _esc(", ".join(part["mismatch"])))
    if f and not msg:
        for label, key in (("Custodian", "custodian"), ("Path", "path"), ("Entry", "entry"), ("Kind", "kind"),
                           ("Type", "magic"), ("Parent", "parent"), ("Status", "status")):
            if f.get(key):
                g.add_row(label, _esc(f[key]))
        if "size" in f:
            g.add_row("Size", "%s bytes" % thousands(f["size"]))
        if f.get("sha256"):
            g.add_row("SHA-256", f["sha256"])
        if f.get("symlink_target"):
            g.add_row("Target", _esc(f["symlink_target"]))
        if f.get("name_flags"):
            g.add_row("Name flags", "[red]%s[/]" % _esc(", ".join(f["name_flags"])))
    title = "message" if msg else ("part" if part else "file")
    console.print(Panel(g, title="leaktriage show: %s" % title, title_align="left", expand=False))

    if msg and headers and msg.get("headers"):
        t = Table(title="Headers (%d)" % len(msg["headers"]), title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
        t.add_column("Field", no_wrap=True, style="bold")
        t.add_column("Value", overflow="fold")
        for h in msg["headers"]:
            val = h.get("value") or h.get("raw")
            if val is None and h.get("raw_b64"):
                val = "(not UTF-8: base64 %s)" % h["raw_b64"]
            t.add_row(_esc(h.get("name")), _esc(" ".join((val or "").split())))
        console.print(t)
    if item.parts:
        console.print(_tree(item.parts, "MIME structure (%d entities)" % len(item.parts)))
    if msg and msg.get("indicators"):
        t = Table(title="Findings", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        t.add_column("Code", no_wrap=True)
        t.add_column("Severity")
        t.add_column("Evidence", overflow="fold")
        for ind in msg["indicators"]:
            t.add_row(_esc(ind.get("code")), _esc(ind.get("severity")), _esc(ind.get("evidence") or ind.get("explanation")))
        console.print(t)
    if item.children:
        t = Table(title="Inside (%d%s)" % (len(item.children) + item.more_children,
                                            ", first %d shown" % LIMIT if item.more_children else ""),
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        t.add_column("Record")
        t.add_column("Locator", overflow="fold")
        t.add_column("Size", justify="right")
        for c in item.children:
            t.add_row(c["record"], _esc(c["locator"]), human_bytes(c.get("size", c.get("length", 0))))
        console.print(t)
    if item.problems:
        t = Table(title="Problems (%d)" % len(item.problems), title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
        t.add_column("Code", no_wrap=True)
        t.add_column("Severity")
        t.add_column("Where / what", overflow="fold")
        for p in item.problems:
            style = {"error": "red", "warning": "yellow"}.get(p.get("severity"), "")
            where = "" if p["locator"] == item.locator else "%s\n" % _esc(p["locator"])
            t.add_row(_esc(p["code"]), "[%s]%s[/]" % (style, p["severity"]) if style else p.get("severity", ""),
                      where + _esc(p.get("message")))
        console.print(t)
    else:
        console.print("No problems recorded for this item.")
    for d in item.duplicates:
        others = [x for x in d.get("members") or () if x != item.locator]
        console.print("[bold]%s copy[/] of this message (%d in all): %s" % (
            "Exact" if d.get("kind") == "exact" else "Same email,", d.get("count", 0),
            _esc("; ".join(others[:5]) + (" ..." if len(others) > 5 else ""))))
