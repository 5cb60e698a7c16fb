"""The Rich report of a scan, rendered from a summary record (so it works on any manifest later)."""
from __future__ import annotations

from typing import Optional

from leaktriage.console import human_bytes, thousands


def render(summary: dict, console, manifest: Optional[str] = None, digest: Optional[str] = None,
           top: int = 15, dump: Optional[str] = None, db: Optional[str] = None) -> None:
    from rich.table import Table
    from rich.panel import Panel
    wide = (console.width or 80) >= 110  # locator columns only where they fit; `leaktriage report` lists them

    files = summary.get("files", {})
    msgs = summary.get("messages", {})
    atts = summary.get("attachments", {})
    dups = summary.get("duplicates", {})
    probs = summary.get("problems", {})

    from leaktriage.manifest import danger
    from leaktriage.manifest.report import copies_line, files_line
    auth = summary.get("authenticity") or {}
    by_code = probs.get("by_code", {})
    # start here: what matters first, from the summary record alone (`leaktriage report` says more)
    risky = {k: 0 for k in danger.KINDS}
    for t, n in (atts.get("by_type") or {}).items():
        k = danger.classify(t, None)
        if k:
            risky[k] += n
    sh = Table.grid(padding=(0, 2))
    sh.add_column(style="bold", no_wrap=True)
    sh.add_column(overflow="fold")
    distinct = msgs.get("total", 0) - dups.get("canonical_redundant", 0)
    sh.add_row("Messages", "%s stored, %s distinct emails, %s custodians%s" % (
        thousands(msgs.get("total", 0)), thousands(distinct), thousands(len(summary.get("custodians") or {})),
        ", %s .. %s" % (msgs["date_min"][:10], msgs["date_max"][:10]) if msgs.get("date_min") else ""))
    if auth.get("signed_messages") or auth.get("indicators"):
        sh.add_row("DKIM", "%s of %s signed messages verified; %s altered after signing (body or signed headers "
                           "changed)" % (thousands(auth.get("verified_messages", 0)),
                                         thousands(auth.get("signed_messages", 0)),
                                         thousands((auth.get("by_summary") or {}).get("fail", 0))))
    else:
        sh.add_row("DKIM", "no signed message")
    mism = "; attachments whose content contradicts their %s" % ", ".join(
        "%s %s" % ({"declared-type": "declared type", "extension": "name"}.get(k, k), thousands(v.get("count", 0)))
        for k, v in (atts.get("mismatches") or {}).items()) if atts.get("mismatches") else ""
    sh.add_row("Dangerous", "%s executables, %s scripts, %s macro documents (by detected type)%s" % (
        thousands(risky["executable"]), thousands(risky["script"]), thousands(risky["macro"]), mism))
    if by_code:
        from leaktriage.model.problems import CODES
        order = {"error": 0, "warning": 1, "info": 2}
        top3 = sorted(by_code.items(), key=lambda kv: (order.get(CODES.get(kv[0], ("?",))[0], 3), -kv[1], kv[0]))[:3]
        sh.add_row("Top problems", ", ".join("%s %s x%s" % (k, CODES.get(k, ("?",))[0], thousands(v)) for k, v in top3))
    console.print(Panel(sh, title="leaktriage scan: start here", expand=False))
    from leaktriage.manifest.report import next_commands
    console.print("Next:")
    for c in next_commands(manifest, dump, db, report=True):   # never wrapped inside an argument
        console.print("  " + c, soft_wrap=True, markup=False, highlight=False)

    ov = Table.grid(padding=(0, 2))
    ov.add_column(style="bold")
    ov.add_column()
    ov.add_row("Files", files_line(files.get("total", 0), None, None, files.get("bytes", 0), files.get("non_mail", 0)))
    src = ", ".join("%s %s" % (thousands(v), k) for k, v in msgs.get("by_source", {}).items())
    ov.add_row("Messages", "%s%s" % (thousands(msgs.get("total", 0)), " (%s)" % src if src else ""))
    if msgs.get("date_min"):
        ov.add_row("Date range", "%s .. %s%s" % (msgs["date_min"], msgs["date_max"],
                                               ", %s undated" % thousands(msgs["undated"]) if msgs.get("undated") else ""))
    ov.add_row("MIME parts", thousands(summary.get("parts", 0)))
    ov.add_row("Attachments", "%s (%s, %s unique)" % (thousands(atts.get("total", 0)), human_bytes(atts.get("bytes", 0)),
                                                     thousands(atts.get("unique", 0))))
    ov.add_row("Copies", copies_line(msgs.get("total", 0), dups.get("canonical_groups", 0),
                                     dups.get("canonical_messages", 0), dups.get("canonical_redundant", 0),
                                     dups.get("exact_redundant", 0)))
    ov.add_row("Problems", "%s (%s)" % (thousands(probs.get("total", 0)), ", ".join(
        "%s %s" % (thousands(v), k) for k, v in probs.get("by_severity", {}).items()) or "none"))
    if manifest:
        ov.add_row("Manifest", manifest)
    if digest:
        ov.add_row("SHA-256", digest)
    console.print(Panel(ov, title="leaktriage scan", expand=False))

    cust = summary.get("custodians", {})
    if cust:
        t = Table(title="Custodians", show_edge=False)
        t.add_column("Custodian", overflow="fold")
        t.add_column("Messages", justify="right")
        for k, v in sorted(cust.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            t.add_row(k, thousands(v))
        if len(cust) > top:
            t.add_row("... %d more" % (len(cust) - top), "")
        console.print(t)
    mb = summary.get("mailboxes", {})
    if mb:
        t = Table(title="Mailboxes (%d)" % len(mb), show_edge=False)
        t.add_column("Mailbox", overflow="fold")
        t.add_column("Messages", justify="right")
        for k, v in sorted(mb.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            t.add_row(k, thousands(v))
        if len(mb) > top:
            t.add_row("... %d more" % (len(mb) - top), "")
        console.print(t)
    kinds = files.get("by_kind", {})
    if kinds:
        t = Table(title="Files by kind (sniffed from content)", show_edge=False)
        t.add_column("Kind")
        t.add_column("Files", justify="right")
        for k, v in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
            t.add_row(k, thousands(v))
        console.print(t)
    types = atts.get("by_type", {})
    if types:
        t = Table(title="Attachments by detected type", show_edge=False)
        t.add_column("Type (libmagic)", overflow="fold")
        t.add_column("Count", justify="right")
        for k, v in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            t.add_row(k, thousands(v))
        console.print(t)
    mm = atts.get("mismatches", {})
    if mm:
        t = Table(title="Type mismatches", show_edge=False)
        t.add_column("Contradicts")
        t.add_column("Count", justify="right")
        if wide:
            t.add_column("Examples", overflow="fold")
        for k, v in mm.items():
            t.add_row(k, thousands(v["count"]), *(["\n".join(v.get("examples", []))] if wide else []))
        console.print(t)
    if auth.get("signed_messages"):
        t = Table(title="DKIM: %s of %s signed messages verified" % (thousands(auth.get("verified_messages", 0)),
                                                                     thousands(auth["signed_messages"])), show_edge=False)
        t.add_column("Signing domain (d=)", overflow="fold")
        for v in sorted({v for c in auth.get("by_domain", {}).values() for v in c}):
            t.add_column(v, justify="right")
        verdicts = sorted({v for c in auth.get("by_domain", {}).values() for v in c})
        for d, c in auth.get("by_domain", {}).items():
            t.add_row(d, *[thousands(c.get(v, 0)) for v in verdicts])
        console.print(t)
        if auth.get("missing_keys"):
            console.print("Keys to look for (no key in the key store): " +
                          ", ".join("%s (%s)" % (k, thousands(v)) for k, v in auth["missing_keys"].items()))
    if auth.get("indicators"):
        t = Table(title="Tampering and coverage indicators", show_edge=False)
        t.add_column("Indicator")
        t.add_column("Indicators", justify="right")   # how many were raised (a message may carry several)
        if wide:
            t.add_column("First locators", overflow="fold")
        ex = auth.get("indicator_examples", {})
        for k, v in sorted(auth["indicators"].items(), key=lambda kv: (-kv[1], kv[0])):
            t.add_row(k, thousands(v), *(["\n".join(ex.get(k, [])[:2])] if wide else []))
        console.print(t)
    if by_code:
        from leaktriage.model.problems import CODES
        t = Table(title="Problems by code", show_edge=False)
        t.add_column("Code", no_wrap=True)
        t.add_column("Severity")
        t.add_column("Problems", justify="right")
        if wide:
            t.add_column("First locators", overflow="fold")
        ex = probs.get("examples", {})
        for k, v in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0])):
            sev = CODES.get(k, ("?",))[0]
            style = {"error": "red", "warning": "yellow"}.get(sev, "")
            t.add_row(k, "[%s]%s[/]" % (style, sev) if style else sev, thousands(v),
                      *(["\n".join(ex.get(k, [])[:2])] if wide else []))
        console.print(t)
        if not wide:
            import shlex
            console.print("Where each problem is: leaktriage report %s (or jq over the problem records)."
                          % (shlex.quote(manifest) if manifest else "MANIFEST"), markup=False, highlight=False)
