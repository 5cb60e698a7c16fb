"""Run a query against the index: hits with snippets, counts, and their output (JSONL or a Rich table).

Start-up matters (every query is a whole process), so this module imports only sqlite3, re and
the query compiler; Rich is imported only to draw a table on a terminal.
"""
from __future__ import annotations

import collections.abc
import os
import re
import sqlite3

from leaktriage.text.fold import fold, fold_with_map
from leaktriage.search.query import Compiled, QueryError, compile_query  # noqa: F401  (QueryError re-exported)

SORTS = ("newest", "oldest", "relevance")


class SearchError(Exception):
    pass


def _query_failed(exc: Exception) -> str:
    if "no such table" in str(exc):      # a filter whose tables an index built by an older leaktriage lacks
        return "this index has no table %s (it was built by an older leaktriage): rebuild it with leaktriage index" \
            % str(exc).rpartition(":")[2].strip()
    return "the index could not run this query: %s" % exc


_CODE_TERM = re.compile(r"(?<![\w:])(finding|problem):([\w.-]+)(?![\w*])", re.I)


def unknown_codes(con: sqlite3.Connection, query: str) -> list[str]:
    """Notes for people: finding:/problem: codes of the query that no row of this index has, exactly
    or as a family, with the closest codes it does have (a typo otherwise gives 0 hits silently)."""
    import difflib
    notes = []
    for field, code in _CODE_TERM.findall(query or ""):
        table = "findings" if field.lower() == "finding" else "problems"
        code = code.lower()
        try:
            if con.execute("SELECT 1 FROM %s WHERE code = ? OR (code >= ? AND code < ?) LIMIT 1" % table,
                           (code, code + ".", code + "/")).fetchone():
                continue
            known = [r[0] for r in con.execute("SELECT DISTINCT code FROM %s" % table) if r[0]]
        except sqlite3.Error:
            continue
        close = difflib.get_close_matches(code, known, n=3, cutoff=0.75)
        notes.append("no message of this index has the %s %s%s" % (
            field.lower(), code, "; did you mean %s?" % " or ".join(close) if close else ""))
    return notes


def open_db(path: str) -> sqlite3.Connection:
    if not os.path.isfile(path):
        raise SearchError("no index at %s (build one with: leaktriage index MANIFEST --dump DIR -o %s)" % (path, path))
    try:
        con = sqlite3.connect("file:%s?mode=ro" % _uri_path(path), uri=True)
        con.execute("SELECT 1 FROM messages_fts LIMIT 0")
    except sqlite3.DatabaseError as exc:
        raise SearchError("%s is not a leaktriage index (%s)" % (path, exc))
    con.create_function("fold", 1, lambda s: fold(s) if s else s, deterministic=True)
    con.execute("PRAGMA mmap_size = 1073741824")
    return con


def _uri_path(path: str) -> str:
    from urllib.parse import quote
    return quote(os.path.abspath(path))


class Hit:
    """One matching email (or, with all_copies, one stored copy). The locator is that of the first
    matching copy in the sort order; copies: how many copies of the email the dump holds, and
    stored: where (locator, custodian, mailbox of each copy) when there are several.
    spans: highlighted ranges of the snippet."""

    __slots__ = ("id", "locator", "date", "from_text", "to_text", "subject", "custodian", "mailbox", "sha256",
                 "attachment_names", "dkim", "risk", "email_id", "copies", "stored", "snippet", "spans")

    def __init__(self, id, locator, date, from_text, to_text, subject, custodian, mailbox, sha256,
                 attachment_names, dkim, risk=None, email_id=None, copies=1, snippet=None, spans=None):
        self.id, self.locator, self.date, self.from_text, self.to_text = id, locator, date, from_text, to_text
        self.subject, self.custodian, self.mailbox, self.sha256 = subject, custodian, mailbox, sha256
        self.attachment_names, self.dkim, self.snippet, self.spans = attachment_names, dkim, snippet, spans
        self.risk, self.email_id, self.copies, self.stored = risk, email_id, copies or 1, None

    def as_json(self) -> dict:
        d = {"locator": self.locator, "date": self.date, "from": self.from_text, "to": self.to_text,
             "subject": self.subject, "custodian": self.custodian, "mailbox": self.mailbox,
             "sha256": self.sha256, "copies": self.copies}
        if self.stored:
            d["stored"] = [{"locator": a, "custodian": b, "mailbox": c} for a, b, c in self.stored]
        if self.attachment_names:
            d["attachments"] = self.attachment_names.split("\n")
        if self.dkim:
            d["dkim"] = self.dkim
        if self.risk:
            d["risk"] = self.risk.split()
        if self.snippet is not None:
            d["snippet"] = self.snippet
        return {k: v for k, v in d.items() if v is not None}


_COLS = "m.id, m.locator, m.date, m.from_text, m.to_text, m.subject, m.custodian, m.mailbox, m.sha256, " \
        "m.attachment_names, m.dkim, m.risk, m.email_id"


def _select(c: Compiled, sort: str, limit: int | None, offset: int = 0, page: bool = False) -> tuple[str, list]:
    """The SELECT of the hits in order; limit: a LIMIT clause; page: only a page of the first hits is
    wanted (LIMIT, or the caller stops reading early), so walk the date index rather than sort."""
    params = list(c.params)
    page = page or bool(limit)
    if sort == "relevance" and c.fts:
        sql = ("SELECT %s FROM messages m JOIN (SELECT rowid AS rid, rank FROM messages_fts WHERE messages_fts "
               "MATCH ?) r ON r.rid = m.id WHERE %s ORDER BY r.rank, m.date DESC, m.id" % (_COLS, c.where))
        params = [c.fts] + params
    else:
        order = "m.date ASC, m.id" if sort == "oldest" else "m.date DESC, m.id"
        # a page of hits: walk the date index and stop after `limit` matches, instead of fetching and
        # sorting every hit (the conditions only need the row id, which the index holds)
        hint = " INDEXED BY messages_date" if page else ""
        where = c.where
        lo, hi = c.date_range
        if page and (lo or hi):
            # the same condition again on m.date itself: the walk covers only that date range
            # (28 hits among 73,867 messages with date:2017-03..2017-04: 30 ms -> 8 ms)
            extra = [x for x in ("m.date >= ?" if lo else None, "m.date < ?" if hi else None) if x]
            where = "%s AND (%s)" % (" AND ".join(extra), where)
            params = [x for x in (lo, hi) if x] + params
        sql = "SELECT %s FROM messages m%s WHERE %s ORDER BY %s" % (_COLS, hint, where, order)
    if limit:
        sql += " LIMIT %d OFFSET %d" % (int(limit), int(offset))
    return sql, params


def _single_id_subquery(where: str):
    """(column, 'table WHERE ...') when `where` is exactly one `m.id IN (SELECT col FROM ...)`."""
    head = "m.id IN (SELECT "
    if not where.startswith(head) or not where.endswith(")"):
        return None
    depth = 0
    for i, ch in enumerate(where):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != len(where) - 1:
                return None  # the first subquery closes before the end: more conditions follow
    inner = where[len(head):-1]
    col, sep, rest = inner.partition(" FROM ")
    if not sep or not col.replace("_", "").isalnum():
        return None
    return col, rest


class _NotIdSet(Exception):
    pass


def _id_set_sql(where: str) -> str:
    """Rewrite a condition made only of `m.id IN (SELECT ...)` leaves joined by AND / OR / NOT into
    one compound SELECT of ids (INTERSECT / UNION / EXCEPT), evaluated on indexes and the FTS table
    without reading the wide message rows. Raises _NotIdSet for anything else."""
    pos = 0

    def sub_end(i: int) -> int:  # index just past the parenthesis group starting at i
        depth, quote = 0, None
        for j in range(i, len(where)):
            ch = where[j]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return j + 1
        raise _NotIdSet()

    def expr() -> str:
        nonlocal pos
        if where.startswith("NOT coalesce(", pos):  # NOT coalesce(X, 0): the complement of X
            pos += len("NOT coalesce(")
            inner = expr()
            if not where.startswith(", 0)", pos):
                raise _NotIdSet()
            pos += len(", 0)")
            return "SELECT * FROM (SELECT id FROM messages INDEXED BY messages_attachment_count EXCEPT %s)" % inner
        if where.startswith("m.id IN (", pos):
            start = pos + len("m.id IN ")
            end = sub_end(start)
            pos = end
            return "SELECT DISTINCT * FROM %s" % where[start:end]
        if where.startswith("(", pos):
            pos += 1
            items = [expr()]
            ops = []
            while True:
                for word, op in ((" AND ", "INTERSECT"), (" OR ", "UNION")):
                    if where.startswith(word, pos):
                        pos += len(word)
                        ops.append(op)
                        items.append(expr())
                        break
                else:
                    break
            if not where.startswith(")", pos) or len(set(ops)) > 1:
                raise _NotIdSet()
            pos += 1
            if not ops:
                return items[0]
            return "SELECT * FROM (%s)" % (" %s " % ops[0]).join(items)
        raise _NotIdSet()

    out = expr()
    if pos != len(where):
        raise _NotIdSet()
    return out


def _ids_sql(c: Compiled) -> tuple[str, list]:
    """A SELECT of the ids of the matching messages, each once, on indexes and the FTS table only."""
    if c.fts is not None and c.params == [c.fts] and c.where.startswith("m.id IN (SELECT rowid FROM messages_fts"):
        return "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", [c.fts]   # pure full text
    try:
        # the whole query as a compound of id sets: no visit to the wide messages rows
        return _id_set_sql(c.where), c.params
    except _NotIdSet:
        pass
    sub = _single_id_subquery(c.where)
    if sub is not None:
        # one `m.id IN (SELECT x FROM ...)` condition: the ids where they are, without visiting the wide
        # messages rows (has:attachment 37 ms -> 1 ms on 72k messages)
        col, rest = sub
        return "SELECT DISTINCT %s FROM %s" % (col, rest), c.params
    return "SELECT m.id FROM messages m WHERE %s" % c.where, c.params


def count(con: sqlite3.Connection, query: str, copies: bool = False) -> int:
    """The number of matching emails (copies of one email count once), or with copies=True of
    matching stored messages."""
    c = compile_query(query)
    ids, params = _ids_sql(c)
    try:
        if copies:
            return con.execute("SELECT count(*) FROM (%s)" % ids, params).fetchone()[0]
        # (id, email_id) is one covering index: the wide rows are never read
        return con.execute("SELECT count(DISTINCT email_id) FROM messages INDEXED BY messages_id_email "
                           "WHERE id IN (%s)" % ids, params).fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise SearchError(_query_failed(exc))


def search(con: sqlite3.Connection, query: str, *, sort: str = "newest", limit: int | None = None,
           snippets: bool = True, width: int = 160, all_copies: bool = False) -> collections.abc.Iterator[Hit]:
    """The matching emails, one hit each (the first matching copy in the sort order), or with
    all_copies every matching stored copy; at most `limit` hits."""
    c = compile_query(query)
    # one hit per email: copies of an email share its date, so a page of `limit` emails is found by
    # walking the date index a little further than `limit` rows; the walk stops when the page is full
    sql, params = _select(c, sort, limit if all_copies else None, page=bool(limit))
    try:
        rows = con.execute(sql, params)
    except sqlite3.OperationalError as exc:
        raise SearchError(_query_failed(exc))
    pattern = _term_regex(c.terms) if snippets else None
    seen: set = set()
    n = 0
    for row in rows:
        hit = Hit(*row)
        if not all_copies:
            if hit.email_id in seen:
                continue
            seen.add(hit.email_id)
        copies = con.execute("SELECT copies FROM emails WHERE id = ?", (hit.email_id,)).fetchone()
        hit.copies = copies[0] if copies else 1
        if hit.copies > 1:
            hit.stored = con.execute("SELECT locator, custodian, mailbox FROM messages INDEXED BY messages_email "
                                     "WHERE email_id = ? ORDER BY id", (hit.email_id,)).fetchall()
        if snippets:
            body = con.execute("SELECT body, attachment_text FROM messages WHERE id = ?", (hit.id,)).fetchone()
            hit.snippet, hit.spans = make_snippet(body[0] or "", pattern, width, extra=body[1] or "")
        yield hit
        n += 1
        if limit and n >= limit:
            return


def _term_regex(terms: list[tuple[str, bool]]):
    if not terms:
        return None
    # a word matches with or without apostrophes inside it ("ndiaye" highlights "N'Diaye")
    alts = sorted({"'?".join(re.escape(ch) for ch in w) + (r"\w*" if p else r"(?!\w)") for w, p in terms},
                  key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:%s)" % "|".join(alts))


_SPACE = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")


def make_snippet(text: str, pattern, width: int = 160, extra: str = "") -> tuple[str, list[tuple[int, int]]]:
    """A one-line extract of text around the first match (folded matching, original characters),
    with the matched ranges. Falls back to `extra` (attachment text) when the body has no match."""
    m = pattern.search(fold(text)) if pattern is not None and text else None
    if pattern is not None and m is None and text and extra:
        m2 = pattern.search(fold(extra))
        if m2 is not None:
            text, m = extra, m2
    if not text:
        return "", []
    start = 0
    if pattern is not None:
        if m:
            # folded offsets drift from the original only at ligatures and combining marks
            start = max(0, m.start() - width // 3)
            lo = max(0, start - 40)
            window = text[lo:lo + width + 120]
            fw, where = fold_with_map(window)
            m2 = pattern.search(fw, max(0, m.start() - lo - 40))
            if m2 and where:
                start = lo + max(0, where[m2.start()] - width // 3)
    # snap to a word start
    if start:
        sp = text.rfind(" ", max(0, start - 15), start)
        start = sp + 1 if sp >= 0 else start
    raw = text[start:start + width + 40]
    one = _SPACE.sub(" ", raw).strip()[:width]
    spans: list[tuple[int, int]] = []
    if pattern is not None and one:
        fo, where = fold_with_map(one)
        for m in pattern.finditer(fo):
            if m.end() > m.start():
                spans.append((where[m.start()], where[m.end() - 1] + 1))
    prefix = "…" if start else ""
    # more text after the snippet: `one` was cut, or something but white space follows `raw`
    suffix = "…" if len(_SPACE.sub(" ", raw).strip()) > len(one) or _NON_SPACE.search(text, start + len(raw)) else ""
    return prefix + one + suffix, [(a + len(prefix), b + len(prefix)) for a, b in spans]


# --------------------------------------------------------------------------------------------
# Output

def write_jsonl(hits, out) -> int:
    n = 0
    import json  # here, not at the top: `search --count` never needs it
    dumps = json.dumps
    for h in hits:
        out.write(dumps(h.as_json(), ensure_ascii=False) + "\n")
        n += 1
    return n


def write_locators(hits, out) -> int:
    n = 0
    for h in hits:
        out.write(h.locator + "\n")
        n += 1
    return n


def render_table(hits, query: str, total: int | None, limit: int | None, con=None, unit: str = "emails") -> int:
    from rich.table import Table
    from rich.text import Text
    from leaktriage.console import make_console
    console = make_console(stderr=False)
    table = Table(show_lines=False, expand=True, title=None, header_style="bold")
    table.add_column("date", no_wrap=True, width=10)
    table.add_column("from", overflow="ellipsis", no_wrap=True, ratio=2)
    table.add_column("subject / snippet", ratio=6)
    table.add_column("locator", overflow="fold", ratio=3, style="dim")
    n = 0
    pattern = _term_regex(compile_query(query).terms)
    for h in hits:
        n += 1
        subj = Text(h.subject or "(no subject)", style="bold")
        if pattern is not None and h.subject:
            fo, where = fold_with_map(h.subject)
            for m in pattern.finditer(fo):
                if m.end() > m.start():
                    subj.stylize("reverse", where[m.start()], where[m.end() - 1] + 1)
        cell = Text()
        cell.append_text(subj)
        if h.attachment_names:
            cell.append("  📎 " + ", ".join(h.attachment_names.split("\n")), style="cyan")
        if h.risk:
            cell.append("  ⚠ " + ", ".join(h.risk.split()), style="bold red")
        if h.copies > 1:
            where = sorted({c or "?" for _, c, _ in h.stored or ()})
            cell.append("\n%d copies: %s" % (h.copies, ", ".join(where)), style="magenta")
        if h.snippet:
            snip = Text(h.snippet)
            for a, b in h.spans or ():
                snip.stylize("bold yellow", a, b)
            cell.append("\n")
            cell.append_text(snip)
        sender = h.from_text or ""
        if "<" in sender:
            sender = sender.split("<", 1)[0].strip().strip('"') or sender
        table.add_row((h.date or "")[:10], sender, cell, h.locator)
    console.print(table)
    shown = "%d %s" % (n, unit if n != 1 else unit.replace("copies", "copy").rstrip("s"))
    if total is not None and total > n:
        shown = "%d of %d %s (use --limit to see more, --format jsonl for all)" % (n, total, unit)
    console.print("[dim]%s for[/dim] %s" % (shown, query), highlight=False)
    return n
