"""The Datasette plugin of `leaktriage serve` (registered by leaktriage.site.server, never by import).

- the search box of the inbox and messages pages takes leaktriage's query language (`_q=`), compiled by
  leaktriage.search.query; a malformed query is said to be so, with a caret under the error, and
  matches nothing (never a silent 0 rows);
- the row page of a message reads like an email: headers, text, attachments (type, size, danger, text
  status, download), DKIM verdicts and indicators, problems, the other copies, the thread;
- downloads go through the one resolver (leaktriage.manifest.resolver): the bytes are checked against
  the SHA-256 the manifest recorded, sent as application/octet-stream with a name that says the
  detected type (never rendered by the browser);
- cells: subjects link to the message, JSON lists read as lists, verdicts and dangers stand out.
"""
from __future__ import annotations

import asyncio
import json
import os
from typing import Optional

from datasette import hookimpl
from datasette.filters import FilterArguments
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from leaktriage.text.fold import fold
from leaktriage.search.query import QueryError, compile_query

CONFIG = "leaktriage"            # the plugin's section in the metadata: {"databases": [...], "dump": ...}
SEARCHABLE = ("inbox", "messages")
HINT = ('words and "phrases"; from: to: cc: subject: body: attachment: filename: date:2017-03..2017-04 '
        'has:attachment type:pdf dkim:pass risk:any text:scan in:attachment custodian: mailbox: sha256: id: '
        'AND OR NOT -word ( ). Case, accents, ligatures and apostrophes are ignored; one row per email.')


def _config(datasette) -> dict:
    return datasette.plugin_config(CONFIG) or {}


def ours(datasette, database: Optional[str]) -> bool:
    return bool(database) and database in (_config(datasette).get("databases") or ())


def named(sql: str, params: list, prefix: str = "ltq") -> tuple:
    """The compiled query's positional ? parameters as :named ones (Datasette's convention); string
    literals of the SQL are left alone (user values are never in them: they are all parameters)."""
    out, named_params, quote, n = [], {}, None, 0
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
            out.append(ch)
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            key = "%s%d" % (prefix, n)
            named_params[key] = params[n]
            out.append(":" + key)
            n += 1
        else:
            out.append(ch)
    if n != len(params):
        raise ValueError("parameter count mismatch")
    return "".join(out), named_params


@hookimpl
def prepare_connection(conn):
    conn.create_function("fold", 1, lambda s: fold(s) if s else s, deterministic=True)


@hookimpl
def filters_from_request(request, database, table, datasette):
    if table not in SEARCHABLE or not ours(datasette, database):
        return None
    q = (request.args.get("_q") or "").strip()
    if not q:
        return None
    try:
        c = compile_query(q)
    except QueryError as exc:
        return FilterArguments(["0"], human_descriptions=["an invalid query: nothing is shown"],
                               extra_context={"leaktriage_error": str(exc), "leaktriage_pointer": exc.pointer()})
    where, params = named(c.where, c.params)
    if table == "inbox":   # an email matches when one of its copies does
        clause = ("id IN (SELECT e.first_message FROM emails e WHERE e.id IN "
                  "(SELECT m.email_id FROM messages m WHERE %s))" % where)
    else:
        clause = "id IN (SELECT m.id FROM messages m WHERE %s)" % where
    return FilterArguments([clause], params, human_descriptions=["match %s" % q])


@hookimpl
def extra_css_urls(database, datasette):
    return ["/-/leaktriage/leaktriage.css"]


@hookimpl
def extra_template_vars(template, database, table, view_name, request, datasette):
    if not ours(datasette, database):
        return {}

    async def inner():
        out = {"leaktriage": True, "leaktriage_hint": HINT, "leaktriage_q": "", "leaktriage_keep": []}
        if request is not None:
            out["leaktriage_q"] = request.args.get("_q") or ""
            out["leaktriage_keep"] = [(k, v) for k in request.args.keys() for v in request.args.getlist(k)
                                      if k in ("_sort", "_sort_desc", "_size") or k.startswith("_facet")]
        if view_name == "row" and table == "messages" and request is not None:
            try:
                mid = int(request.url_vars.get("pks", ""))
            except ValueError:
                return out
            out["lt_message"] = await message_context(datasette, database, mid)
        return out

    return inner


async def _rows(db, sql: str, params=()) -> list:
    return [dict(r) for r in (await db.execute(sql, list(params))).rows]


async def message_context(datasette, database: str, mid: int) -> Optional[dict]:
    """Everything the message page shows, in a few queries."""
    db = datasette.get_database(database)
    rows = await _rows(db, "SELECT * FROM messages WHERE id = ?", [mid])
    if not rows:
        return None
    m = rows[0]
    ctx = {"m": m}
    ctx["attachments"] = await _rows(db, "SELECT id, filename, type, size, risk, text_status, text_chars, text_codes, "
                                         "mismatch, magic, content_type, inside, locator, sha256 FROM attachments "
                                         "WHERE message_id = ? ORDER BY id", [mid])
    for a in ctx["attachments"]:
        a["download"] = "/-/leaktriage/download/%s/%d" % (database, a["id"])
    ctx["findings"] = await _rows(db, "SELECT kind, code, severity, domain, selector, explanation FROM findings "
                                      "WHERE message_id = ? ORDER BY id", [mid])
    ctx["problems"] = await _rows(db, "SELECT code, severity, origin, description, locator FROM problems "
                                      "WHERE message_id = ? ORDER BY id", [mid])
    ctx["copies"] = await _rows(db, "SELECT id, locator, custodian, mailbox FROM messages WHERE email_id = ? AND id != ? "
                                    "ORDER BY id", [m["email_id"], mid])
    parents = []
    for ref in (m.get("in_reply_to") or "").split():
        parents += await _rows(db, "SELECT id, date, subject, from_text FROM messages INDEXED BY "
                                   "messages_header_message_id WHERE header_message_id = ? ORDER BY id LIMIT 3", [ref])
    ctx["parents"] = parents
    ctx["replies"] = []
    if m.get("header_message_id"):
        ctx["replies"] = await _rows(db, "SELECT id, date, subject, from_text FROM messages WHERE in_reply_to = ? "
                                         "OR instr(in_reply_to, ?) > 0 ORDER BY date, id LIMIT 50",
                                     [m["header_message_id"], m["header_message_id"]])
    # the thread, when the index has one (leaktriage.conversations adds messages.thread_id)
    ctx["thread"] = []
    if "thread_id" in m and m.get("thread_id") is not None:
        ctx["thread"] = await _rows(db, "SELECT id, date, subject, from_text FROM messages WHERE thread_id = ? "
                                        "ORDER BY date, id LIMIT 200", [m["thread_id"]])
    ctx["messages_url"] = datasette.urls.table(database, "messages")
    await _privacy_context(db, mid, m, ctx)
    return ctx


async def _privacy_context(db, mid: int, m: dict, ctx: dict) -> None:
    """The private sphere of the message (leaktriage.search.privacy_analysis): sphere, reasons, sensitive
    topics, personal data, and the body with its personal data marked (the stored offsets)."""
    ctx["privacy"], ctx["pii"], ctx["body_html"] = None, [], None
    if not await db.table_exists("privacy"):
        return
    rows = await _rows(db, "SELECT sphere, confidence, sensitive, pii_kinds, reasons FROM privacy WHERE message_id = ?",
                       [mid])
    if rows and rows[0]["sphere"]:
        p = rows[0]
        p["sensitive"] = json.loads(p["sensitive"] or "[]")
        p["reasons"] = json.loads(p["reasons"] or "[]")[:6]
        ctx["privacy"] = p
    ctx["pii"] = await _rows(db, 'SELECT kind, value, part, rule, validated, start, "end" FROM pii WHERE message_id = ? '
                                 'ORDER BY part, start', [mid])
    body = m.get("body") or ""
    marks = sorted((x["start"], x["end"], x["kind"], x["rule"]) for x in ctx["pii"] if x["part"] == "body")
    if body and marks:
        out, pos = [], 0
        for a, b, kind, rule in marks:
            if a < pos or b > len(body):
                continue
            out.append(escape(body[pos:a]))
            out.append(Markup('<mark class="lt-pii" title="%s (%s)">%s</mark>') % (kind, rule, body[a:b]))
            pos = b
        out.append(escape(body[pos:]))
        ctx["body_html"] = Markup("").join(out)


def _link(datasette, database: str, mid, text) -> Markup:
    return Markup('<a href="%s/%s">%s</a>') % (datasette.urls.table(database, "messages"), int(mid), text)


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if not ours(datasette, database):
        return None
    keys = row.keys() if hasattr(row, "keys") else ()
    if table == "inbox" and column == "subject" and "id" in keys:
        return _link(datasette, database, row["id"], value if value not in (None, "") else "(no subject)")
    if column == "message" and table is None and isinstance(value, int):
        return _link(datasette, database, value, "message %d" % value)
    if column in ("custodians", "attachment_types") and isinstance(value, str) and value.startswith("["):
        try:
            return ", ".join(json.loads(value))
        except ValueError:
            return None
    if column == "risk" and value:
        return Markup('<span class="lt-risk">%s</span>') % value
    if column == "dkim" and value:
        cls = {"pass": "lt-pass", "fail": "lt-fail"}.get(value, "lt-other")
        return Markup('<span class="%s">%s</span>') % (cls, value)
    if column == "copies" and isinstance(value, int) and value > 1:
        return Markup('<span class="lt-copies">%d copies</span>') % value
    return None


# -- routes ---------------------------------------------------------------------------------------

def _css() -> str:
    with open(os.path.join(os.path.dirname(__file__), "static", "leaktriage.css"), encoding="utf-8") as f:
        return f.read()


async def css(request, datasette):
    return Response(_css(), content_type="text/css; charset=utf-8")


async def home(request, datasette):
    return Response.redirect(datasette.urls.table((_config(datasette).get("databases") or [""])[0], "inbox"))


def download_name(filename: Optional[str], magic: Optional[str], risk: Optional[str]) -> str:
    """The original name made safe, with the detected type's extension added when the name says
    another (Facture.pdf that is a program: Facture.pdf.exe_), defused for executables and macros."""
    from leaktriage.manifest import danger
    from leaktriage.manifest.extract import EXTENSIONS, safe_component
    name = safe_component(filename, fallback="attachment")
    ext = EXTENSIONS.get((magic or "").lower())
    if ext and danger.extension(name) != ext:
        name = "%s.%s" % (name, ext)
    if risk:
        name += "_"
    return name


async def download(request, datasette):
    database = request.url_vars["database"]
    if not ours(datasette, database):
        return Response.text("not a leaktriage index", status=404)
    db = datasette.get_database(database)
    rows = await _rows(db, "SELECT locator, sha256, filename, magic, risk FROM attachments WHERE id = ?",
                       [int(request.url_vars["id"])])
    if not rows or not rows[0]["sha256"]:
        return Response.text("no such attachment, or the scan recorded no bytes for it", status=404)
    a = rows[0]
    dump = _config(datasette).get("dump") or (await _rows(db, "SELECT value FROM meta WHERE key = 'dump'"))[0]["value"]

    def read() -> bytes:
        from leaktriage.manifest.resolver import Resolver
        return bytes(Resolver(dump).part({"locator": a["locator"], "sha256": a["sha256"]}))

    from leaktriage.manifest.resolver import ItemChanged, ResolveError
    try:
        data = await asyncio.get_event_loop().run_in_executor(None, read)
    except ItemChanged as exc:
        return Response.text("refused: %s" % exc, status=409)
    except ResolveError as exc:
        return Response.text("cannot read it from the dump %s: %s" % (dump, exc), status=404)
    name = download_name(a["filename"], a["magic"], a["risk"])
    from urllib.parse import quote
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    return Response(data, content_type="application/octet-stream", headers={
        "Content-Disposition": "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (ascii_name, quote(name)),
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": "no-store",
        "X-Leaktriage-SHA256": a["sha256"]})


@hookimpl
def register_routes(datasette):
    routes = [(r"^/-/leaktriage/leaktriage\.css$", css),
              (r"^/-/leaktriage/download/(?P<database>[^/]+)/(?P<id>\d+)$", download)]
    if len(_config(datasette).get("databases") or ()) == 1:
        routes.insert(0, (r"^/$", home))     # the site opens on the emails
    return routes
