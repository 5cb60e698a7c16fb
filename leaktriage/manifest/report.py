"""`leaktriage report`: figures computed from a manifest in one streaming pass, and three renderings.

aggregate(manifest) -> dict (the JSON document of `report --format json`); render_rich() draws it for
people (terminal, stderr), render_markdown() for a newsroom wiki. Memory grows with the number of
distinct senders, domains, months and problem codes, never with the number of records.
"""
from __future__ import annotations

import json
import os
import shlex
from collections import Counter
from typing import Dict, List, Optional

from leaktriage.version import __version__
from leaktriage.errors import ManifestError
from leaktriage.manifest import danger
from leaktriage.manifest.reader import Manifest, file_sha256
from leaktriage.model.records import SCHEMA_VERSION, is_entity
from leaktriage.console import human_bytes, thousands

EXAMPLES = 3
ARCHIVE_KINDS = ("zip", "tar", "gzip", "bzip2", "xz", "7z", "rar", "tnef")
MAIL_KINDS = ("message", "mbox", "msg", "pst", "emlx")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


class _Examples:
    def __init__(self):
        self.count: Counter = Counter()
        self.examples: Dict[str, List[str]] = {}
        self.severity: Dict[str, str] = {}

    def add(self, key: str, loc: str, severity: Optional[str] = None) -> None:
        self.count[key] += 1
        ex = self.examples.setdefault(key, [])
        if len(ex) < EXAMPLES:
            ex.append(loc)
        if severity and key not in self.severity:
            self.severity[key] = severity

    def table(self) -> List[dict]:
        out = []
        for k, v in sorted(self.count.items(), key=lambda kv: (SEVERITY_ORDER.get(self.severity.get(kv[0]), 3),
                                                               -kv[1], kv[0])):
            row = {"code": k, "count": v}
            if k in self.severity:
                row["severity"] = self.severity[k]
            row["examples"] = self.examples.get(k, [])
            out.append(row)
        return out


def _months(first: str, last: str) -> List[str]:
    y, m = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    out = []
    while (y, m) <= (ly, lm):
        out.append("%04d-%02d" % (y, m))
        m += 1
        if m > 12:
            y, m = y + 1, 1
    return out


STATE = ("files", "members", "file_bytes", "non_mail", "by_kind", "msgs", "undated", "parts", "bad_dates",
         "by_source", "date_min", "date_max", "custodians", "mailboxes", "senders", "sender_names",
         "rcpt_domains", "months", "att", "att_bytes", "att_hashes", "att_types", "mismatches",
         "mismatch_count", "mismatch_atts", "dkim", "dkim_msgs", "indicators", "problems", "severities", "dup",
         "dup_cross", "dup_largest", "summary", "dkim_altered", "ind_msgs", "risky")
PARALLEL_MIN = 24 << 20   # manifests smaller than this are read in one process


def aggregate(manifest: Manifest, top: int = 10, workers: int = 1) -> dict:
    """The report document. With workers > 1 a large manifest file is cut at line boundaries and the
    pieces are read in parallel processes (same result, checked line by line the same way)."""
    st = None
    if workers > 1 and manifest.path != "-" and manifest._stream is None:
        try:
            size = os.path.getsize(manifest.path)
        except OSError:
            size = 0
        if size >= PARALLEL_MIN:
            st = _parallel(manifest, top, workers, size)
    if st is None:
        st = _fold(manifest.records(), top)
    return _finish(st, manifest, top)


def _fold(records, top: int) -> dict:
    files = members = file_bytes = non_mail = 0
    by_kind: Counter = Counter()
    msgs = undated = parts = bad_dates = 0
    by_source: Counter = Counter()
    date_min = date_max = None
    custodians: Counter = Counter()
    mailboxes: Counter = Counter()
    senders: Counter = Counter()
    sender_names: Dict[str, str] = {}
    rcpt_domains: Counter = Counter()
    months: Counter = Counter()
    att = att_bytes = 0
    att_hashes = set()
    att_types: Dict[str, List[int]] = {}
    mismatches: List[dict] = []
    mismatch_count: Counter = Counter()
    mismatch_atts = 0
    dkim: Counter = Counter()
    dkim_msgs = 0
    indicators = _Examples()
    problems = _Examples()
    severities: Counter = Counter()
    dup = {"exact": [0, 0, 0], "canonical": [0, 0, 0]}  # groups, messages, redundant
    dup_cross = {"exact": 0, "canonical": 0}
    dup_largest: List[dict] = []
    summary = None
    dkim_altered = 0                       # messages whose DKIM summary is fail (altered after signing)
    ind_msgs: Counter = Counter()          # indicator code -> messages (or mailboxes) carrying it
    risky = {k: [0, 0, []] for k in danger.KINDS}   # kind -> [attachments, disguised, examples]
    for rec in records:
        kind = rec["record"]
        if kind == "part":
            if is_entity(rec):
                parts += 1
            if rec.get("attachment"):
                rk = danger.classify(rec.get("magic"), rec.get("filename"))
                if rk:
                    r = risky[rk]
                    r[0] += 1
                    dis = danger.disguised(rk, rec.get("filename"), rec.get("mismatch"))
                    r[1] += dis
                    if len(r[2]) < max(top, 10):
                        r[2].append({"locator": rec["locator"], "filename": rec.get("filename"),
                                     "detected": rec.get("magic"), "declared": rec.get("content_type"),
                                     "disguised": dis})
                att += 1
                size = rec.get("size", 0)
                att_bytes += size
                if rec.get("sha256"):
                    att_hashes.add(rec["sha256"])
                t = att_types.setdefault(rec.get("magic") or "unknown", [0, 0])
                t[0] += 1
                t[1] += size
                mm = rec.get("mismatch")
                if mm:
                    mismatch_atts += 1
                    for x in mm:
                        mismatch_count[x] += 1
                    if len(mismatches) < max(top, 10):
                        mismatches.append({"locator": rec["locator"], "filename": rec.get("filename"),
                                           "declared": rec.get("content_type"), "detected": rec.get("magic"),
                                           "mismatch": mm})
        elif kind == "message":
            msgs += 1
            by_source[rec.get("source") or "?"] += 1
            d = rec.get("date")
            if d:
                if date_min is None or d < date_min:
                    date_min = d
                if date_max is None or d > date_max:
                    date_max = d
                if len(d) >= 7 and d[:4].isdigit() and d[4] == "-" and d[5:7].isdigit():
                    months[d[:7]] += 1
                else:
                    bad_dates += 1
            else:
                undated += 1
            if rec.get("custodian"):
                custodians[rec["custodian"]] += 1
            if rec.get("mailbox"):
                mailboxes[rec["mailbox"]] += 1
            frm = rec.get("from") or ()
            if frm:
                a = (frm[0].get("address") or "").lower()
                if a:
                    senders[a] += 1
                    if a not in sender_names and frm[0].get("name"):
                        sender_names[a] = frm[0]["name"]
            doms = set()
            for key in ("to", "cc", "bcc"):
                for a in rec.get(key) or ():
                    addr = (a.get("address") or "").lower()
                    if "@" in addr:
                        doms.add(addr.rpartition("@")[2])
            for dm in doms:
                rcpt_domains[dm] += 1
            if rec.get("dkim_summary") or rec.get("dkim"):
                dkim_msgs += 1
                dkim[rec.get("dkim_summary") or "unknown"] += 1
                if rec.get("dkim_summary") == "fail":   # no signature verifies, one says body or headers changed
                    dkim_altered += 1
            for ind in rec.get("indicators") or ():
                if ind.get("code"):
                    indicators.add(ind["code"], rec["locator"], ind.get("severity"))
            for code in {i.get("code") for i in rec.get("indicators") or () if i.get("code")}:
                ind_msgs[code] += 1
        elif kind == "file":
            k = rec.get("kind") or rec.get("entry") or "?"
            by_kind[k] += 1
            if "parent" in rec:
                members += 1
            else:
                files += 1
                file_bytes += rec.get("size", 0)
            if k not in MAIL_KINDS and k not in ARCHIVE_KINDS:
                non_mail += 1
        elif kind == "problem":
            problems.add(rec["code"], rec["locator"], rec.get("severity"))
            severities[rec.get("severity", "?")] += 1
        elif kind == "mailbox":
            for ind in rec.get("indicators") or ():
                if ind.get("code"):
                    indicators.add(ind["code"], rec["locator"], ind.get("severity"))
            for ind in rec.get("indicators") or ():   # a mailbox-wide indicator names the messages it is about
                if ind.get("code"):
                    ind_msgs[ind["code"]] += len((ind.get("evidence") or {}).get("messages") or ()) or 1
        elif kind == "duplicate_group":
            gk = rec.get("kind", "exact")
            if gk in dup:
                dup[gk][0] += 1
                dup[gk][1] += rec.get("count", 0)
                dup[gk][2] += max(0, rec.get("count", 0) - 1)
                if len(rec.get("custodians") or ()) > 1:
                    dup_cross[gk] += 1
            dup_largest.append({"kind": gk, "digest": rec.get("digest"), "count": rec.get("count", 0),
                                "custodians": rec.get("custodians") or [],
                                "members": (rec.get("members") or [])[:EXAMPLES]})
            dup_largest.sort(key=lambda g: (-g["count"], g["kind"], g["digest"] or ""))
            del dup_largest[top:]
        elif kind == "summary":
            summary = rec
    loc = locals()
    return {k: loc[k] for k in STATE}


def _merge(a: dict, b: dict, top: int) -> dict:
    """Combine the state of a piece of the manifest (a) with the piece that follows it (b)."""
    out = dict(a)
    for k in STATE:
        x, y = a[k], b[k]
        if k in ("date_min",):
            out[k] = min(v for v in (x, y) if v) if (x or y) else None
        elif k in ("date_max",):
            out[k] = max(v for v in (x, y) if v) if (x or y) else None
        elif k == "summary":
            out[k] = y or x
        elif k == "sender_names":
            out[k] = dict(y, **x)
        elif k == "att_hashes":
            out[k] = x | y
        elif k == "att_types":
            out[k] = {t: [x.get(t, [0, 0])[0] + y.get(t, [0, 0])[0], x.get(t, [0, 0])[1] + y.get(t, [0, 0])[1]]
                      for t in set(x) | set(y)}
        elif k == "mismatches":
            out[k] = (x + y)[:max(top, 10)]
        elif k in ("indicators", "problems"):
            e = _Examples()
            e.count = x.count + y.count
            e.examples = {c: (x.examples.get(c, []) + y.examples.get(c, []))[:EXAMPLES]
                          for c in set(x.examples) | set(y.examples)}
            e.severity = dict(y.severity, **x.severity)
            out[k] = e
        elif k == "dup":
            out[k] = {g: [x[g][i] + y[g][i] for i in range(3)] for g in x}
        elif k == "dup_cross":
            out[k] = {g: x[g] + y[g] for g in x}
        elif k == "dup_largest":
            out[k] = sorted(x + y, key=lambda g: (-g["count"], g["kind"], g["digest"] or ""))[:top]
        elif k == "risky":
            out[k] = {r: [x[r][0] + y[r][0], x[r][1] + y[r][1], (x[r][2] + y[r][2])[:max(top, 10)]] for r in x}
        else:  # ints and Counters
            out[k] = x + y
    return out


def _piece(args):
    path, start, end, last, top = args
    m = Manifest(path).piece(start, end)
    try:
        st = _fold(m.records(partial=not last), top)
    except ManifestError as exc:
        return None, (exc.reason, exc.line, exc.exit_code), 0
    return st, None, m.lines


def _parallel(manifest: Manifest, top: int, workers: int, size: int) -> Optional[dict]:
    from leaktriage.manifest.reader import SchemaVersionError
    from leaktriage.pool import WorkerPool
    manifest.check_digest()
    n = max(2, min(workers, 16, size // (8 << 20)))
    jobs = [(manifest.path, a, b, last, top) for a, b, last in manifest.pieces(n)]
    with WorkerPool(len(jobs)) as pool:
        results = list(pool.imap(_piece, jobs))
    lines_before = 0
    state = None
    for (st, err, nlines), job in zip(results, jobs):
        if err is not None:
            reason, line, code = err
            cls = SchemaVersionError if code == SchemaVersionError.exit_code else ManifestError
            raise cls(reason, manifest.path, lines_before + line if line else None)
        if state is not None and state["summary"] is not None:
            raise ManifestError("a record after the summary record (the summary must be the last line; lines "
                                "were appended or files concatenated)", manifest.path, lines_before + 1)
        lines_before += nlines
        state = st if state is None else _merge(state, st, top)
    manifest.sha256 = manifest.checked_sha256 or file_sha256(manifest.path)
    manifest.lines = lines_before
    manifest.bytes = size
    manifest.summary = state["summary"] if state else None
    return state


def _finish(st: dict, manifest: Manifest, top: int) -> dict:
    g = st
    (files, members, file_bytes, non_mail, by_kind, msgs, undated, parts, bad_dates, by_source, date_min,
     date_max, custodians, mailboxes, senders, sender_names, rcpt_domains, months, att, att_bytes, att_hashes,
     att_types, mismatches, mismatch_count, mismatch_atts, dkim, dkim_msgs, indicators, problems, severities,
     dup, dup_cross, dup_largest, summary, dkim_altered, ind_msgs, risky) = (g[k] for k in STATE)
    sidecar, expected = manifest.sidecar()

    if months:
        ks = sorted(months)
        span = _months(ks[0], ks[-1])
        timeline = [{"month": m, "messages": months.get(m, 0)} for m in span] if len(span) <= 240 else \
            [{"month": m, "messages": months[m]} for m in ks]
    else:
        timeline = []

    def top_list(c: Counter, key: str, n: int = top) -> List[dict]:
        return [{key: k, "messages": v} for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

    doc = {
        "report": "leaktriage",
        "version": __version__,
        "schema": SCHEMA_VERSION,
        "manifest": {"path": manifest.name, "sha256": manifest.sha256, "lines": manifest.lines,
                     "bytes": manifest.bytes, "sidecar": sidecar},
        "overview": {
            "files": files, "file_bytes": file_bytes, "archive_members": members, "non_mail_files": non_mail,
            "files_by_kind": dict(sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))),
            "messages": msgs, "messages_by_source": dict(sorted(by_source.items())),
            "date_min": date_min, "date_max": date_max, "undated": undated, "dates_off_calendar": bad_dates,
            "mime_parts": parts, "attachments": att, "attachment_bytes": att_bytes,
            "attachments_unique": len(att_hashes),
            "problems": sum(problems.count.values()), "problems_by_severity": dict(sorted(severities.items())),
        },
        "custodians": top_list(custodians, "custodian", 10 ** 6),
        "mailboxes": top_list(mailboxes, "mailbox", 10 ** 6),
        "senders": [dict(x, name=sender_names.get(x["address"])) if sender_names.get(x["address"]) else x
                    for x in top_list(senders, "address")],
        "distinct_senders": len(senders),
        "recipient_domains": top_list(rcpt_domains, "domain"),
        "timeline": timeline,
        "attachments": {
            "by_type": [{"type": k, "count": v[0], "bytes": v[1]}
                        for k, v in sorted(att_types.items(), key=lambda kv: (-kv[1][0], kv[0]))],
            "mismatches": {"count": mismatch_atts,
                           "by_kind": dict(sorted(mismatch_count.items())), "examples": mismatches},
        },
        "duplicates": {
            "exact": {"groups": dup["exact"][0], "messages": dup["exact"][1], "redundant": dup["exact"][2],
                      "across_custodians": dup_cross["exact"]},
            "canonical": {"groups": dup["canonical"][0], "messages": dup["canonical"][1],
                          "redundant": dup["canonical"][2], "across_custodians": dup_cross["canonical"]},
            "largest": dup_largest,
        },
        "authenticity": ({"messages_with_dkim": dkim_msgs, "dkim": dict(sorted(dkim.items(), key=lambda kv: (-kv[1], kv[0]))),
                          "messages_altered": dkim_altered,
                          "indicators": [dict(r, messages=ind_msgs.get(r["code"], 0)) for r in indicators.table()]}
                         if (dkim_msgs or indicators.count) else None),
        "dangerous": {k: {"attachments": v[0], "disguised": v[1], "examples": v[2]} for k, v in risky.items()},
        "problems": problems.table(),
    }
    doc["start_here"] = start_here(doc, manifest.name, custodians=len(custodians))
    # cross-check with the summary record written by the scan
    if summary:
        diffs = []
        sm = summary.get("messages", {}).get("total")
        if sm is not None and sm != msgs:
            diffs.append("messages: summary says %s, records %s" % (sm, msgs))
        sp = summary.get("problems", {}).get("total")
        if sp is not None and sp != doc["overview"]["problems"]:
            diffs.append("problems: summary says %s, records %s" % (sp, doc["overview"]["problems"]))
        sa = summary.get("attachments", {}).get("total")
        if sa is not None and sa != att:
            diffs.append("attachments: summary says %s, records %s" % (sa, att))
        doc["consistency"] = diffs
        doc["scan"] = {"tool": summary.get("tool"), "options": summary.get("options")}
    return doc


def _dump_root(manifest: str) -> Optional[str]:
    """The dump the manifest was made from, as its run record (MANIFEST.run.json) gives it, when the
    record is there and the dump still is (so that the next commands can be pasted as they are)."""
    try:
        with open(manifest + ".run.json", encoding="utf-8") as f:
            root = json.load(f).get("dump_root")
    except (OSError, ValueError, AttributeError):
        return None
    return root if isinstance(root, str) and os.path.exists(root) else None


def start_here(doc: dict, manifest: str, custodians: int) -> dict:
    """The figures that matter first, and the next commands to run."""
    ov = doc["overview"]
    au = doc.get("authenticity") or {}
    d = doc["duplicates"]["canonical"]
    dump = _dump_root(manifest) if manifest != "<stdin>" else None
    return {
        "messages": ov["messages"], "distinct_emails": ov["messages"] - d["redundant"], "custodians": custodians,
        "date_min": ov["date_min"], "date_max": ov["date_max"],
        "dkim_signed": au.get("messages_with_dkim", 0), "dkim_verified": (au.get("dkim") or {}).get("pass", 0),
        "dkim_altered": au.get("messages_altered", 0), "dkim_analysed": bool(au),
        "dangerous": {k: [v["attachments"], v["disguised"]] for k, v in doc["dangerous"].items()},
        "top_problems": [{"code": r["code"], "count": r["count"], "severity": r.get("severity")}
                         for r in doc["problems"][:3]],
        "next": next_commands(manifest if manifest != "<stdin>" else None, dump),
    }


def next_commands(manifest: Optional[str], dump: Optional[str], db: Optional[str] = None,
                  report: bool = False) -> List[str]:
    """The next commands, ready to paste: the manifest, the dump and the index named as given (or as
    the run record names them), shell-quoted; no `index` step when the index is given."""
    q = shlex.quote(manifest) if manifest else "MANIFEST"
    out = ["leaktriage report %s" % q] if report else []
    if db:
        d = shlex.quote(db)
    else:
        d = "triage.db"
        out.append("leaktriage index %s --dump %s -o triage.db" % (q, shlex.quote(dump) if dump else "DUMP"))
    out += ["leaktriage search %s 'risk:any'" % d, "leaktriage serve %s" % d,
            "leaktriage show LOCATOR -m %s --text%s" % (q, " --db %s" % d if db else "")]
    return out


def _start_lines(sh: dict) -> List[tuple]:
    """(label, text) rows of the start-here block, the same for the terminal and Markdown."""
    rows = [("Messages", "%s stored, %s distinct emails, %s custodians%s" % (
        thousands(sh["messages"]), thousands(sh["distinct_emails"]), thousands(sh["custodians"]),
        ", %s .. %s" % (sh["date_min"][:10], sh["date_max"][:10]) if sh["date_min"] else ""))]
    if sh["dkim_analysed"]:
        rows.append(("DKIM", "%s of %s signed messages verified; %s altered after signing (body or signed headers "
                             "changed)" % (thousands(sh["dkim_verified"]), thousands(sh["dkim_signed"]),
                                           thousands(sh["dkim_altered"]))))
    else:
        rows.append(("DKIM", "not analysed in this manifest"))
    cp = sh.get("copies")       # report --db: the index's comparison of copies (leaktriage.conversations)
    if cp:
        # counted on the Message-ID as well as the content: an altered copy has other bytes (so the Copies
        # line, which counts identical content, does not count it) but the same Message-ID
        rows.append(("Corroboration", "%s emails stored more than once by Message-ID or content (an altered copy "
                               "counts here, not under Copies): %s corroborated by independent custodians, %s "
                               "contradicting (%s messages), %s held by one custodian only, %s not fully compared"
                     % (thousands(cp["copy_groups"]), thousands(cp["corroborated"]), thousands(cp["contradiction"]),
                        thousands(cp["messages_contradicted"]), thousands(cp["single-custodian"]),
                        thousands(cp["incomplete"]))))
    dg = sh["dangerous"]
    rows.append(("Dangerous", "%s executables (%s named as something else), %s scripts, %s macro documents" % (
        thousands(dg["executable"][0]), thousands(dg["executable"][1]), thousands(dg["script"][0]),
        thousands(dg["macro"][0]))))
    if sh["top_problems"]:
        rows.append(("Top problems", ", ".join("%s %s x%s" % (p["code"], p.get("severity") or "", thousands(p["count"]))
                                                for p in sh["top_problems"])))
    return rows


def to_json(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


# -- terminal ---------------------------------------------------------------------------------------

def _bar(n: int, peak: int, width: int) -> str:
    if peak <= 0 or n <= 0:
        return ""
    eighths = int(round(n * width * 8 / peak))
    full, rest = divmod(max(eighths, 1), 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else "")


def render_rich(doc: dict, console, top: int = 10) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich import box

    width = console.size.width
    narrow = width < 80
    ov = doc["overview"]

    def table(title, *cols, **kw):
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, expand=False, min_width=min(len(title), width), **kw)
        for c in cols:
            name, _, opts = c.partition(":")
            t.add_column(name, justify="right" if "r" in opts else "left",
                         overflow="fold", no_wrap=False, ratio=None,
                         min_width=None, max_width=None)
        return t

    sh = doc["start_here"]
    g = Table.grid(padding=(0, 2))
    g.add_column(style="bold", no_wrap=True)
    g.add_column(overflow="fold")
    for label, text in _start_lines(sh):
        style = "red" if label == "Dangerous" and any(v[0] for v in sh["dangerous"].values()) else ""
        g.add_row(label, "[%s]%s[/]" % (style, _e(text)) if style else _e(text))
    console.print(Panel(g, title="leaktriage report: start here", title_align="left", expand=False))
    console.print("Next:")
    for c in sh["next"]:       # never wrapped by Rich: a command cut inside an argument cannot be pasted
        console.print("  " + c, soft_wrap=True, markup=False, highlight=False)

    g = Table.grid(padding=(0, 2))
    g.add_column(style="bold", no_wrap=True)
    g.add_column(overflow="fold")
    g.add_row("Files", files_line(ov["files"] + ov["archive_members"], ov["files"], ov["archive_members"],
                                  ov["file_bytes"], ov["non_mail_files"]))
    src = ", ".join("%s %s" % (thousands(v), k) for k, v in ov["messages_by_source"].items())
    g.add_row("Messages", "%s%s" % (thousands(ov["messages"]), " (%s)" % src if src else ""))
    if ov["date_min"]:
        g.add_row("Dates", "%s .. %s%s" % (ov["date_min"][:10], ov["date_max"][:10],
                                          ", %s undated" % thousands(ov["undated"]) if ov["undated"] else ""))
    g.add_row("Attachments", "%s (%s, %s unique)" % (thousands(ov["attachments"]), human_bytes(ov["attachment_bytes"]),
                                                    thousands(ov["attachments_unique"])))
    d = doc["duplicates"]
    g.add_row("Copies", copies_line(ov["messages"], d["canonical"]["groups"], d["canonical"]["messages"],
                                    d["canonical"]["redundant"], d["exact"]["redundant"]))
    sev = ov["problems_by_severity"]
    g.add_row("Problems", "%s%s" % (thousands(ov["problems"]), " (%s)" % ", ".join(
        "%s %s" % (thousands(sev[k]), k) for k in ("error", "warning", "info") if k in sev) if sev else ""))
    m = doc["manifest"]
    g.add_row("Manifest", _e(m["path"]))
    side = {"ok": "matches MANIFEST.sha256", "mismatch": "[red]DIFFERS from MANIFEST.sha256[/]",
            "absent": "no MANIFEST.sha256 beside it", "malformed": "MANIFEST.sha256 unreadable"}
    g.add_row("SHA-256", m["sha256"])
    g.add_row("Integrity", side.get(m["sidecar"], m["sidecar"]))
    for diff in doc.get("consistency") or ():
        g.add_row("[red]Inconsistent[/]", _e(diff))
    console.print(Panel(g, title="leaktriage report", title_align="left", expand=False))

    if doc["custodians"]:
        t = table("Custodians (%d)" % len(doc["custodians"]), "Custodian", "Messages:r")
        for r in doc["custodians"][:top]:
            t.add_row(_e(r["custodian"]), thousands(r["messages"]))
        if len(doc["custodians"]) > top:
            t.add_row("... %d more" % (len(doc["custodians"]) - top), "")
        console.print(t)
    if doc["mailboxes"]:
        t = table("Mailboxes (%d)" % len(doc["mailboxes"]), "Mailbox", "Messages:r")
        for r in doc["mailboxes"][:top]:
            t.add_row(_e(r["mailbox"]), thousands(r["messages"]))
        if len(doc["mailboxes"]) > top:
            t.add_row("... %d more" % (len(doc["mailboxes"]) - top), "")
        console.print(t)
    if doc["senders"]:
        t = table("Top senders (%s distinct)" % thousands(doc["distinct_senders"]), "Sender", "Messages:r")
        for r in doc["senders"]:
            t.add_row(_e(r["address"] if narrow or not r.get("name") else "%s <%s>" % (r["name"], r["address"])),
                      thousands(r["messages"]))
        console.print(t)
    if doc["recipient_domains"]:
        t = table("Top recipient domains", "Domain", "Messages:r")
        for r in doc["recipient_domains"]:
            t.add_row(_e(r["domain"]), thousands(r["messages"]))
        console.print(t)
    if doc["timeline"]:
        peak = max(r["messages"] for r in doc["timeline"])
        barw = max(8, min(50, width - 20))
        t = Table(title="Messages per month (by Date header, UTC)", title_justify="left", box=None,
                  show_header=False, pad_edge=False, padding=(0, 1))
        t.add_column(no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(no_wrap=True, style="cyan")
        for r in doc["timeline"]:
            t.add_row(r["month"], thousands(r["messages"]), _bar(r["messages"], peak, barw))
        console.print(t)
        if doc["overview"]["undated"]:
            console.print("  (%s messages have no usable Date header)" % thousands(doc["overview"]["undated"]))
    a = doc["attachments"]
    if a["by_type"]:
        t = table("Attachments by detected type", "Type (libmagic)", "Count:r", "Size:r")
        for r in a["by_type"][:top]:
            t.add_row(_e(r["type"]), thousands(r["count"]), human_bytes(r["bytes"]))
        if len(a["by_type"]) > top:
            t.add_row("... %d more types" % (len(a["by_type"]) - top), "", "")
        console.print(t)
    if a["mismatches"]["examples"]:
        t = table("Type mismatches (%s)" % ", ".join("%s %s" % (thousands(v), k)
                                                      for k, v in a["mismatches"]["by_kind"].items()),
                  "Attachment", "Declared", "Detected")
        for r in a["mismatches"]["examples"][:top]:
            t.add_row(_e("%s\n%s" % (r.get("filename") or "(no name)", r["locator"])), _e(r.get("declared") or ""),
                      _e(r.get("detected") or ""))
        console.print(t)
    dang = [(k, r) for k, v in doc["dangerous"].items() for r in v["examples"]]
    if dang:
        from rich.text import Text
        console.print(Text("Dangerous attachments (executables, scripts, macro documents, whatever their name says): "
                           + ", ".join("%s %s%s" % (thousands(v["attachments"]), k, ", %s disguised" % thousands(v["disguised"])
                                                    if v["disguised"] else "")
                                       for k, v in doc["dangerous"].items() if v["attachments"]), style="italic"))
        for k, r in dang[:top * 2]:
            console.print(Text("  %s%s: %s is %s (declared %s)" % (
                k, ", disguised" if r["disguised"] else "", '"%s"' % r["filename"] if r.get("filename") else "(no name)",
                r.get("detected") or "?", r.get("declared") or "?"), style="red", overflow="fold"))
            console.print(Text("      " + r["locator"], style="dim", overflow="fold"))
        console.print("  every one: leaktriage search triage.db 'risk:any' (after leaktriage index)")
    if d["largest"]:
        if narrow:
            _listing(console, "Largest duplicate groups",
                     [("%s  %s copies  %s" % (r["kind"], thousands(r["count"]), ", ".join(r["custodians"])), None,
                       r["members"][:1]) for r in d["largest"][:top]])
        else:
            t = table("Largest duplicate groups", "Kind", "Copies:r", "Custodians", "Example")
            for r in d["largest"][:top]:
                t.add_row(r["kind"], thousands(r["count"]), _e(", ".join(r["custodians"])),
                          _e(r["members"][0] if r["members"] else ""))
            console.print(t)
    au = doc.get("authenticity")
    if au:
        t = table("DKIM (%s messages signed; %s altered after signing)" % (
            thousands(au["messages_with_dkim"]), thousands(au.get("messages_altered", 0))), "Verdict", "Messages:r")
        for k, v in au["dkim"].items():
            t.add_row(k, thousands(v))
        console.print(t)
        if au["indicators"]:
            _coded(console, "Tampering and coverage indicators", au["indicators"], narrow, table, unit="Indicators")
    else:
        console.print("[dim]DKIM / tampering: not analysed in this manifest (no dkim or indicators fields).[/]")
    if doc["problems"]:
        _coded(console, "Problems by code", doc["problems"], narrow, table, unit="Problems")
    else:
        console.print("No problems recorded.")


def files_line(total: int, on_disk: Optional[int], inside: Optional[int], disk_bytes: int, non_mail: int) -> str:
    """What the Files figure counts, worded the same in `report` and in the scan's summary: every file
    record, on disk and inside archives (the summary record does not split them)."""
    split = ("%s on disk (%s), %s inside archives" % (thousands(on_disk), human_bytes(disk_bytes), thousands(inside))
             if on_disk is not None else "on disk and inside archives; %s on disk" % human_bytes(disk_bytes))
    return "%s (%s), %s not mail" % (thousands(total), split, thousands(non_mail))


def copies_line(messages: int, groups: int, in_groups: int, redundant: int, exact_redundant: int) -> str:
    """What the copies figures count, worded the same in `report` and in the scan's summary. Same-email
    groups include the byte-identical ones: the exact figure is a part of the redundant copies, not more."""
    return ("%s messages are %s distinct emails: %s emails stored more than once (%s messages), %s redundant "
            "copies, %s of them byte-identical" % (thousands(messages), thousands(messages - redundant),
                                                  thousands(groups), thousands(in_groups), thousands(redundant),
                                                  thousands(exact_redundant)))


def _e(s) -> str:
    from rich.markup import escape
    return escape("" if s is None else str(s))


def _coded(console, title: str, rows: List[dict], narrow: bool, table, unit: str = "Count") -> None:
    """Codes with severity, count (of what: unit) and first locators: a table, or on narrow terminals a
    listing where the locators get whole lines (folded, never cut). Rows with a `messages` figure get a
    Messages column too."""
    with_msgs = any("messages" in r for r in rows)
    if narrow:
        _listing(console, title, [("%s  %s  %s %s%s" % (r["code"], r.get("severity") or "", thousands(r["count"]),
                                                        unit.lower(), ", %s messages" % thousands(r["messages"])
                                                        if with_msgs else ""),
                                   r.get("severity"), r["examples"][:2]) for r in rows])
        return
    cols = ["Code", "Severity", unit + ":r"] + (["Messages:r"] if with_msgs else []) + ["First locators"]
    t = table(title, *cols)
    for r in rows:
        t.add_row(_e(r["code"]), _sev(r.get("severity")), thousands(r["count"]),
                  *([thousands(r.get("messages", 0))] if with_msgs else []), _e("\n".join(r["examples"][:2])))
    console.print(t)


def _listing(console, title: str, rows) -> None:
    from rich.text import Text
    console.print(Text(title, style="italic"))
    for head, sev, examples in rows:
        style = {"error": "red", "warning": "yellow"}.get(sev or "", "")
        console.print(Text(head, style=style, overflow="fold"))
        for ex in examples:
            console.print(Text("    " + ex, style="dim", overflow="fold"))


def _sev(s: Optional[str]) -> str:
    style = {"error": "red", "warning": "yellow"}.get(s or "")
    return "[%s]%s[/]" % (style, s) if style else (s or "")


# -- Markdown ---------------------------------------------------------------------------------------

def _md(text) -> str:
    s = "" if text is None else str(text)
    for ch in ("\\", "|", "*", "_", "`", "<", ">", "[", "]"):
        s = s.replace(ch, "\\" + ch)
    return s.replace("\r", " ").replace("\n", " ")


def _code(text) -> str:
    """A Markdown code span safe inside a table cell."""
    s = ("" if text is None else str(text)).replace("`", "'").replace("|", "\\|")
    return "`%s`" % s.replace("\r", " ").replace("\n", " ")


def render_markdown(doc: dict, top: int = 10) -> str:
    ov = doc["overview"]
    L: List[str] = []
    w = L.append
    w("# leaktriage report")
    w("")
    w("## Start here")
    w("")
    w("| | |")
    w("|---|---|")
    for label, text in _start_lines(doc["start_here"]):
        w("| %s | %s |" % (label, _md(text)))
    w("| Next | %s |" % "<br>".join(_code(c) for c in doc["start_here"]["next"]))
    w("")
    w("## Overview")
    w("")
    w("| | |")
    w("|---|---|")
    w("| Files | %s |" % files_line(ov["files"] + ov["archive_members"], ov["files"], ov["archive_members"],
                                   ov["file_bytes"], ov["non_mail_files"]))
    w("| Messages | %s (%s) |" % (thousands(ov["messages"]), ", ".join("%s %s" % (thousands(v), _md(k))
                                                              for k, v in ov["messages_by_source"].items())))
    if ov["date_min"]:
        w("| Dates | %s .. %s%s |" % (ov["date_min"], ov["date_max"],
                                    ", %s undated" % thousands(ov["undated"]) if ov["undated"] else ""))
    w("| Attachments | %s (%s, %s unique) |" % (thousands(ov["attachments"]), human_bytes(ov["attachment_bytes"]),
                                               thousands(ov["attachments_unique"])))
    d = doc["duplicates"]
    w("| Copies | %s |" % copies_line(ov["messages"], d["canonical"]["groups"], d["canonical"]["messages"],
                                     d["canonical"]["redundant"], d["exact"]["redundant"]))
    w("| Problems | %s (%s) |" % (thousands(ov["problems"]), ", ".join(
        "%s %s" % (thousands(v), k) for k, v in ov["problems_by_severity"].items()) or "none"))
    w("| Manifest | %s |" % _code(doc["manifest"]["path"]))
    w("| SHA-256 | `%s` (sidecar: %s) |" % (doc["manifest"]["sha256"], doc["manifest"]["sidecar"]))
    for diff in doc.get("consistency") or ():
        w("| **Inconsistent** | %s |" % _md(diff))

    def tbl(title, head, rows):
        if not rows:
            return
        w("")
        w("## " + title)
        w("")
        w("| " + " | ".join(h.strip() for h in head) + " |")
        w("|" + "|".join("---:" if h.endswith(" ") else "---" for h in head) + "|")
        for r in rows:
            w("| " + " | ".join(r) + " |")

    tbl("Custodians", ["Custodian", "Messages "], [[_md(r["custodian"]), thousands(r["messages"])] for r in doc["custodians"]])
    tbl("Mailboxes", ["Mailbox", "Messages "], [[_md(r["mailbox"]), thousands(r["messages"])] for r in doc["mailboxes"][:top * 3]])
    tbl("Top senders", ["Sender", "Messages "], [[_md(r["address"]), thousands(r["messages"])] for r in doc["senders"]])
    tbl("Top recipient domains", ["Domain", "Messages "],
        [[_md(r["domain"]), thousands(r["messages"])] for r in doc["recipient_domains"]])
    if doc["timeline"]:
        peak = max(r["messages"] for r in doc["timeline"])
        tbl("Messages per month", ["Month", "Messages ", "Bar"],
            [[r["month"], thousands(r["messages"]), _bar(r["messages"], peak, 30) or " "] for r in doc["timeline"]])
    a = doc["attachments"]
    tbl("Attachments by detected type", ["Type", "Count ", "Size "],
        [[_md(r["type"]), thousands(r["count"]), human_bytes(r["bytes"])] for r in a["by_type"]])
    tbl("Type mismatches", ["File name", "Declared", "Detected", "Locator"],
        [[_md(r.get("filename") or "(no name)"), _md(r.get("declared")), _md(r.get("detected")),
          _code(r["locator"])] for r in a["mismatches"]["examples"]])
    tbl("Dangerous attachments", ["Kind", "File name", "Detected", "Declared", "Locator"],
        [[k + (", disguised" if r["disguised"] else ""), _md(r.get("filename") or "(no name)"), _md(r.get("detected")),
          _md(r.get("declared")), _code(r["locator"])]
         for k, v in doc["dangerous"].items() for r in v["examples"]])
    tbl("Largest duplicate groups", ["Kind", "Copies ", "Custodians", "Example"],
        [[r["kind"], thousands(r["count"]), _md(", ".join(r["custodians"])),
          _code(r["members"][0] if r["members"] else "")] for r in d["largest"]])
    au = doc.get("authenticity")
    if au:
        tbl("DKIM verdicts", ["Verdict", "Messages "], [[_md(k), thousands(v)] for k, v in au["dkim"].items()])
        tbl("Tampering and coverage indicators", ["Code", "Severity", "Indicators ", "Messages ", "Examples"],
            [[_code(r["code"]), r.get("severity") or "", thousands(r["count"]), thousands(r.get("messages", 0)),
              "<br>".join(_code(e) for e in r["examples"])] for r in au["indicators"]])
    else:
        w("")
        w("DKIM and tampering indicators: not analysed in this manifest.")
    tbl("Problems by code", ["Code", "Severity", "Problems ", "Examples"],
        [[_code(r["code"]), r.get("severity") or "", thousands(r["count"]),
          "<br>".join(_code(e) for e in r["examples"])] for r in doc["problems"]])
    w("")
    return "\n".join(L)
