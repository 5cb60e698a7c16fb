"""The Rich report of a scan, rendered from a summary record (so it works on any manifest later)."""
from __future__ import annotations

from typing import Optional

from leaktriage.console import human_bytes, thousands


def render(summary: dict, console, manifest: Optional[str] = None, digest: Optional[str] = None,
           top: int = 15) -> None:
    from rich.table import Table
    from rich.panel import Panel
    wide = (console.width or 80) >= 110  # locator columns only where they fit; `leaktriage report` lists them

    files = summary.get("files", {})
    msgs = summary.get("messages", {})
    atts = summary.get("attachments", {})
    dups = summary.get("duplicates", {})
    probs = summary.get("problems", {})

    ov = Table.grid(padding=(0, 2))
    ov.add_column(style="bold")
    ov.add_column()
    ov.add_row("Files", "%s (%s), %s not mail" % (thousands(files.get("total", 0)), human_bytes(files.get("bytes", 0)),
                                                  thousands(files.get("non_mail", 0))))
    src = ", ".join("%s %s" % (thousands(v), k) for k, v in msgs.get("by_source", {}).items())
    ov.add_row("Messages", "%s%s" % (thousands(msgs.get("total", 0)), " (%s)" % src if src else ""))
    if msgs.get("date_min"):
        ov.add_row("Date range", "%s .. %s%s" % (msgs["date_min"], msgs["date_max"],
                                               ", %s undated" % thousands(msgs["undated"]) if msgs.get("undated") else ""))
    ov.add_row("MIME parts", thousands(summary.get("parts", 0)))
    ov.add_row("Attachments", "%s (%s, %s unique)" % (thousands(atts.get("total", 0)), human_bytes(atts.get("bytes", 0)),
                                                     thousands(atts.get("unique", 0))))
    ov.add_row("Duplicates", "exact: %s groups (%s redundant copies); same email: %s groups (%s copies)" % (
        thousands(dups.get("exact_groups", 0)), thousands(dups.get("exact_redundant", 0)),
        thousands(dups.get("canonical_groups", 0)), thousands(dups.get("canonical_messages", 0))))
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
    auth = summary.get("authenticity") or {}
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
        t.add_column("Messages", justify="right")
        if wide:
            t.add_column("First locators", overflow="fold")
        ex = auth.get("indicator_examples", {})
        for k, v in sorted(auth["indicators"].items(), key=lambda kv: (-kv[1], kv[0])):
            t.add_row(k, thousands(v), *(["\n".join(ex.get(k, [])[:2])] if wide else []))
        console.print(t)
    by_code = probs.get("by_code", {})
    if by_code:
        from leaktriage.model.problems import CODES
        t = Table(title="Problems by code", show_edge=False)
        t.add_column("Code", no_wrap=True)
        t.add_column("Severity")
        t.add_column("Count", justify="right")
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
            console.print("Where each problem is: leaktriage report MANIFEST (or jq over the problem records).")
