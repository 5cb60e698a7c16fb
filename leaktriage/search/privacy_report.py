"""The report's "publication safety" section (issue #17): what must be withheld before publishing.

    section(db_path, manifest_sha256=None) -> dict      from an index built with the privacy analyses
    missing(manifest_path) -> dict                       the section when no index was given: how to get it
    render_rich(sec, console) / render_markdown(sec) -> text

The report reads the manifest; the private sphere lives in the index (leaktriage.search.privacy_analysis),
so `leaktriage report MANIFEST --db triage.db` adds this section. Counts are of emails (the copies of one
email count once, like search), with the stored copies beside the totals.
"""
from __future__ import annotations

import json
import os
import sqlite3
from typing import List, Optional

from leaktriage.errors import UsageError

KINDS = ("iban", "nir", "card", "phone", "dob", "address", "passport", "email")
KIND_LABELS = {"iban": "bank accounts (IBAN)", "nir": "social security numbers (NIR)", "card": "payment cards",
               "phone": "phone numbers", "dob": "dates of birth", "address": "postal addresses",
               "passport": "passport numbers", "email": "personal e-mail addresses"}
CATEGORIES = ("health", "finances", "family", "intimate", "legal")
REVIEW_BELOW = 0.75     # sphere decisions less sure than this are listed "to review"


def missing(manifest_path: str) -> dict:
    return {"available": False,
            "how": "leaktriage index %s --dump DIR -o triage.db, then leaktriage report %s --db triage.db"
                   % (manifest_path, manifest_path)}


def section(db_path: str, manifest_sha256: Optional[str] = None) -> dict:
    if not os.path.isfile(db_path):
        raise UsageError("--db: no index at %s (build one with: leaktriage index MANIFEST --dump DIR -o %s)"
                         % (db_path, db_path))
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        con.execute("SELECT 1 FROM privacy LIMIT 0")
    except sqlite3.DatabaseError:
        raise UsageError("--db: %s is not a leaktriage index with the privacy analyses (rebuild it with "
                         "leaktriage index)" % db_path)
    try:
        return _section(con, meta, db_path, manifest_sha256)
    finally:
        con.close()


def _section(con, meta: dict, db_path: str, manifest_sha256: Optional[str]) -> dict:
    sec: dict = {"available": True, "index": db_path}
    if manifest_sha256 and meta.get("manifest_sha256") and meta["manifest_sha256"] != manifest_sha256:
        sec["warning"] = ("the index was built from another manifest (SHA-256 %s...): rebuild it with leaktriage "
                          "index" % meta["manifest_sha256"][:12])
    # one row per email: its first copy carries the email's analysis (copies share their content)
    rows = con.execute(
        "SELECT m.email_id, m.custodian, p.sphere, p.confidence, p.sensitive, p.pii_kinds, e.copies "
        "FROM messages m JOIN emails e ON e.id = m.email_id AND e.first_message = m.id "
        "LEFT JOIN privacy p ON p.message_id = m.id ORDER BY m.id").fetchall()
    copies_by_sphere = dict(con.execute("SELECT coalesce(p.sphere, 'unknown'), count(*) FROM messages m "
                                        "LEFT JOIN privacy p ON p.message_id = m.id GROUP BY 1").fetchall())
    spheres = {s: 0 for s in ("personal", "work", "unknown")}
    review = 0
    per_cust: dict = {}
    kinds = {k: {"emails": 0, "personal": 0, "findings": 0, "values": 0} for k in KINDS}
    cats = {c: {"emails": 0, "personal": 0} for c in CATEGORIES}
    private_data = 0
    for _eid, cust, sphere, conf, sens, pk, _copies in rows:
        sphere = sphere or "unknown"
        spheres[sphere] = spheres.get(sphere, 0) + 1
        if conf is not None and conf < REVIEW_BELOW:
            review += 1
        pk = json.loads(pk) if pk else []
        sens = json.loads(sens) if sens else []
        c = per_cust.setdefault(cust or "(none)", {"emails": 0, "personal": 0, "with_personal_data": 0,
                                                   "sensitive": 0})
        c["emails"] += 1
        c["personal"] += sphere == "personal"
        c["with_personal_data"] += bool(pk)
        c["sensitive"] += bool(sens)
        private_data += bool(pk)
        for k in pk:
            if k in kinds:
                kinds[k]["emails"] += 1
                kinds[k]["personal"] += sphere == "personal"
        for k in sens:
            if k in cats:
                cats[k]["emails"] += 1
                cats[k]["personal"] += sphere == "personal"
    for k, n, v in con.execute("SELECT kind, count(*), count(DISTINCT normalized) FROM pii GROUP BY kind"):
        if k in kinds:
            kinds[k]["findings"] = n
            kinds[k]["values"] = v
    sec["emails"] = len(rows)
    sec["spheres"] = spheres
    sec["stored_copies"] = {s: copies_by_sphere.get(s, 0) for s in ("personal", "work", "unknown")}
    sec["to_review"] = review
    sec["with_personal_data"] = private_data
    sec["custodians"] = [dict(v, custodian=k) for k, v in sorted(per_cust.items(), key=lambda kv: (-kv[1]["personal"],
                                                                                                  kv[0]))]
    sec["personal_data"] = kinds
    sec["sensitive"] = cats
    know = json.loads(meta["privacy_knowledge"]) if meta.get("privacy_knowledge") else {}
    sec["mail_providers"] = {"learned": sorted(d for d, h in (know.get("personal_domains") or {}).items()
                                               if h == "learned"),
                             "known": sorted(d for d, h in (know.get("personal_domains") or {}).items() if h == "list")}
    import shlex
    d = shlex.quote(db_path)
    m = shlex.quote(meta["manifest"]) if meta.get("manifest") else "MANIFEST"
    sec["next"] = ["leaktriage search %s 'sphere:personal'" % d,
                   "leaktriage search %s 'pii:any -sphere:personal'" % d,
                   "leaktriage export %s --db %s --exclude-sphere personal --redact pii -o texts.jsonl "
                   "--redaction-log redactions.jsonl" % (m, d)]
    return sec


def summary_line(db_path: str) -> Optional[str]:
    """One line for the end of `leaktriage index`: private mail and personal data, in emails."""
    try:
        con = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(db_path), uri=True)
        try:
            n, personal, data = con.execute(
                "SELECT count(*), coalesce(sum(p.sphere = 'personal'), 0), coalesce(sum(p.pii_kinds != '[]'), 0) "
                "FROM messages m JOIN emails e ON e.id = m.email_id AND e.first_message = m.id "
                "JOIN privacy p ON p.message_id = m.id").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return None
    return ("private sphere: %d of %d emails personal, %d with personal data (search 'sphere:personal', "
            "'pii:any'; leaktriage report MANIFEST --db %s)" % (personal, n, data, db_path))


def _pct(n: int, total: int) -> str:
    return "%d (%.1f%%)" % (n, 100.0 * n / total) if total else str(n)


def lines(sec: dict) -> List[tuple]:
    """(label, text) rows of the summary block."""
    if not sec.get("available"):
        return [("Not computed", "the private sphere is in the index: " + sec["how"])]
    n = sec["emails"]
    sp = sec["spheres"]
    out = [("Private mail", "%s of %d emails are personal (%d stored copies); %d work, %d unknown"
            % (_pct(sp["personal"], n), n, sec["stored_copies"]["personal"], sp["work"], sp["unknown"])),
           ("Personal data", "%s emails hold personal data (search: pii:any)" % _pct(sec["with_personal_data"], n)),
           ("To review", "%d sphere decisions with a confidence under %.2f" % (sec["to_review"], REVIEW_BELOW))]
    mp = sec["mail_providers"]
    if mp["learned"] or mp["known"]:
        out.append(("Mail providers", "learned from the dump: %s; known: %s"
                    % (", ".join(mp["learned"]) or "none", ", ".join(mp["known"]) or "none")))
    if sec.get("warning"):
        out.append(("Warning", sec["warning"]))
    return out


def render_rich(sec: dict, console) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    console.print()
    console.print("[bold]Publication safety[/]")
    g = Table.grid(padding=(0, 2))
    g.add_column(style="bold", no_wrap=True)
    g.add_column(overflow="fold")
    for label, text in lines(sec):
        g.add_row(label, escape(text))
    console.print(g)
    if not sec.get("available"):
        return

    def table(title, *cols):
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for c in cols:
            t.add_column(c.rstrip(":r"), justify="right" if c.endswith(":r") else "left", overflow="fold")
        return t

    t = table("Private mail per custodian (emails)", "Custodian", "Emails:r", "Personal:r", "With personal data:r",
              "Sensitive:r")
    for c in sec["custodians"]:
        t.add_row(escape(c["custodian"]), str(c["emails"]), str(c["personal"]), str(c["with_personal_data"]),
                  str(c["sensitive"]))
    console.print(t)
    t = table("Personal data by kind", "Kind", "Search", "Emails:r", "of them personal:r", "Findings:r",
              "Distinct values:r")
    for k, v in sec["personal_data"].items():
        t.add_row(KIND_LABELS[k], "pii:" + k, str(v["emails"]), str(v["personal"]), str(v["findings"]),
                  str(v["values"]))
    console.print(t)
    t = table("Sensitive topics", "Category", "Search", "Emails:r", "of them personal:r")
    for k, v in sec["sensitive"].items():
        t.add_row(k, "sensitive:" + k, str(v["emails"]), str(v["personal"]))
    console.print(t)
    console.print("Next:")
    for x in sec["next"]:      # never wrapped inside an argument: pasted as printed
        console.print("  " + x, soft_wrap=True, markup=False, highlight=False)


def render_markdown(sec: dict) -> str:
    L = ["", "## Publication safety", "", "| | |", "|---|---|"]
    for label, text in lines(sec):
        L.append("| %s | %s |" % (label, text.replace("|", "\\|")))
    if not sec.get("available"):
        return "\n".join(L) + "\n"
    L += ["", "### Private mail per custodian (emails)", "",
          "| Custodian | Emails | Personal | With personal data | Sensitive |", "|---|---:|---:|---:|---:|"]
    for c in sec["custodians"]:
        L.append("| %s | %d | %d | %d | %d |" % (c["custodian"].replace("|", "\\|"), c["emails"], c["personal"],
                                               c["with_personal_data"], c["sensitive"]))
    L += ["", "### Personal data by kind", "", "| Kind | Search | Emails | of them personal | Findings | Distinct values |",
          "|---|---|---:|---:|---:|---:|"]
    for k, v in sec["personal_data"].items():
        L.append("| %s | `pii:%s` | %d | %d | %d | %d |" % (KIND_LABELS[k], k, v["emails"], v["personal"],
                                                          v["findings"], v["values"]))
    L += ["", "### Sensitive topics", "", "| Category | Search | Emails | of them personal |", "|---|---|---:|---:|"]
    for k, v in sec["sensitive"].items():
        L.append("| %s | `sensitive:%s` | %d | %d |" % (k, k, v["emails"], v["personal"]))
    L += ["", "Next: " + "<br>".join("`%s`" % x for x in sec["next"])]
    return "\n".join(L) + "\n"
