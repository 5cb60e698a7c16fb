"""Commands that work on a manifest after the scan: report, show, export, extract, verify.

stdout carries data only (JSON, JSON Lines, CSV, Markdown, raw bytes); people read stderr (Rich).
Exit codes (see docs/cli.md): 0 done, 1 unexpected error, 2 usage error, 3 manifest unreadable
(truncated, hand-edited, not a manifest), 4 manifest of a newer schema version, 5 integrity failure
(bytes differ from their recorded digest), 6 dump not found or item not in it, 7 locator not in the
manifest, 16-31 verify found differences (16 + 1 modified + 2 missing + 4 new + 8 moved), 130 interrupted.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import Optional

import click

from leaktriage.cli import streams
from leaktriage.cli.options import CONTEXT, allow_modified, allow_modified_option
from leaktriage.cli.streams import Utf8Stdout
from leaktriage.console import make_console
from leaktriage.errors import (EXIT_DUMP, EXIT_INTEGRITY, DumpError, IntegrityError, LeaktriageError,
                               ManifestError, NotFoundError, UsageError)
from leaktriage.manifest.reader import Manifest
from leaktriage.pool import default_workers


def _console(stderr: bool = True, file=None, width: Optional[int] = None):
    return make_console(stderr=stderr, width=width, file=file)


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(msg, err=True)


def _stdout_text():
    return Utf8Stdout()


def _open_manifest(path: str) -> Manifest:
    if path == "-":
        return Manifest("-", stream=streams.binary("stdin"))
    return Manifest(path, allow_modified=allow_modified())


def dump_root(m: Manifest, dump: Optional[str], needed_for: str) -> str:
    """--dump, or the dump root recorded in MANIFEST.run.json; a clear message when it moved."""
    if dump is None:
        run = m.run_record()
        recorded = run.get("dump_root") if run else None
        if not recorded:
            raise UsageError("%s needs the dump: pass --dump DIR (or set LEAKTRIAGE_DUMP)" % needed_for)
        # a folder, or the one file of a one-file dump (`leaktriage scan Inbox.mbox`)
        if not (os.path.isdir(recorded) or os.path.isfile(recorded)):
            raise DumpError("the dump was scanned at %s, which no longer exists: if it moved, pass its new "
                          "location with --dump DIR" % recorded)
        return recorded
    if not os.path.exists(dump):
        raise DumpError("dump folder %s does not exist (if the dump moved, pass its new location)" % dump)
    if not (os.path.isdir(dump) or os.path.isfile(dump)):
        raise UsageError("dump %s is neither a folder nor a file" % dump)
    return dump


manifest_arg = click.argument("manifest", metavar="MANIFEST", type=click.Path(dir_okay=False, allow_dash=True))


def filter_options(fn):
    """The filters shared by export and extract."""
    opts = [
        click.option("--from", "senders", multiple=True, metavar="ADDR",
                     help="Sender address (From or Sender), case-insensitive; repeat for any of several."),
        click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
                     help="A sender or recipient address in DOMAIN or a subdomain of it; repeatable."),
        click.option("--since", metavar="DATE", help="Messages dated on or after DATE (YYYY[-MM[-DD]], UTC)."),
        click.option("--until", metavar="DATE", help="Messages dated up to and including DATE (2017-03 = end of March)."),
        click.option("--has-attachment", is_flag=True, help="Only messages with at least one attachment."),
        click.option("--no-attachment", is_flag=True, help="Only messages without attachments."),
        click.option("--type", "types", multiple=True, metavar="MIME",
                     help="Attachments whose detected (libmagic) or declared type is MIME; image/* allowed; repeatable."),
        click.option("--finding", "findings", multiple=True, metavar="CODE",
                     help="Items with this problem or indicator code, or a family (base64 = base64.*); repeatable."),
        click.option("--custodian", "custodians", multiple=True, metavar="NAME",
                     help="Custodian (mailbox owner): its words in any order, case, accents and punctuation ignored ('julie besancon' finds 'BESANÇON_Julie'); repeatable."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _filters(kw):
    from leaktriage.manifest.export import Filters
    return Filters.build(senders=kw.pop("senders"), domains=kw.pop("domains"), since=kw.pop("since"),
                         until=kw.pop("until"), has_attachment=kw.pop("has_attachment"),
                         no_attachment=kw.pop("no_attachment"), types=kw.pop("types"),
                         findings=kw.pop("findings"), custodians=kw.pop("custodians"))


# -- report -----------------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@manifest_arg
@allow_modified_option
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True,
              help="text: the terminal report on stderr; json: one JSON document on stdout; md: Markdown on stdout.")
@click.option("-o", "--output", metavar="FILE", default=None,
              help="Write the report to FILE instead (text is then plain, without colours).")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Rows in the top-N tables (senders, domains, types, duplicate groups).")
@click.option("--width", type=click.IntRange(40, 400), default=None,
              help="Width of the text report (default: the terminal's, or 100 in a file).")
@click.option("-w", "--workers", type=click.IntRange(1, 64), default=None,
              help="Processes reading a large manifest (default: number of CPUs, at most 8). Same result.")
@click.option("--db", metavar="DB", default=None,
              help="The index of this manifest (leaktriage index): adds, next to the DKIM figures, how many emails "
                   "stored more than once are corroborated by independent custodians or contradict each other, and "
                   "the publication-safety section (private mail, personal data, sensitive topics, per custodian).")
def report(manifest, fmt, output, top, width, workers, db):
    """Report on a manifest: what the dump holds and what is wrong with it.

    First a start-here block: messages and distinct emails, custodians, dates, messages verified by
    DKIM and altered after signing, executables, scripts and macro documents (whatever their names
    say), the top problems and the next commands. Then the overview (files on disk and inside
    archives, messages, attachments, bytes, dates, copies), custodians and mailboxes, top senders and
    recipient domains, messages per month as a bar chart, attachments by detected type, type
    mismatches and dangerous attachments, duplicate groups, DKIM and tampering findings when the scan
    recorded them, and problems by code with their first locators. Reads MANIFEST in one streaming
    pass ('-' for stdin) and checks it against MANIFEST.sha256 when that file is beside it.

    With --db DB (the index built from MANIFEST), a publication-safety section: how many emails are
    private mail, per custodian, which kinds of personal data and sensitive topics they hold, and the
    searches and export that withhold them (docs/privacy.md). Without it the section says how to get it.

    \b
    Examples:
      leaktriage report manifest.jsonl
      leaktriage report manifest.jsonl --format md > report.md
      leaktriage report manifest.jsonl --format json | jq .overview
      NO_COLOR=1 leaktriage report manifest.jsonl -o report.txt
      leaktriage report manifest.jsonl --db triage.db --format md > report.md
      leaktriage report manifest.jsonl --db triage.db

    \b
    Exit codes: 0 done, 2 usage error, 3 manifest truncated, hand-edited or not a
    manifest, 4 manifest written by a newer leaktriage.
    """
    from leaktriage.manifest import report as reporting
    m = _open_manifest(manifest)
    if workers is None:
        workers = default_workers(limit=8)
    from leaktriage.search import privacy_report
    con = None
    if db:
        from leaktriage.search import conversation_views as cv
        con = cv.open_index(db)
    doc = reporting.aggregate(m, top=top, workers=workers)
    safety = privacy_report.section(db, (doc.get("manifest") or {}).get("sha256")) if db else \
        privacy_report.missing(manifest)
    if db:
        doc["start_here"]["next"] = reporting.next_commands(manifest if manifest != "-" else None, None, db)
    if con is not None:
        doc["corroboration"] = doc["start_here"]["copies"] = cv.corroboration_counts(con)
        built_from = cv.manifest_sha256(con)
        if built_from and getattr(m, "sha256", None) and built_from != m.sha256:
            click.echo("leaktriage: warning: %s was built from another manifest (SHA-256 %s...): its corroboration "
                       "figures may not match this one; run leaktriage index again" % (db, built_from[:12]), err=True)
    if fmt == "json":
        if db:
            doc["publication_safety"] = safety
        text = reporting.to_json(doc)
    elif fmt == "md":
        text = reporting.render_markdown(doc, top=top) + privacy_report.render_markdown(safety)
    else:
        if output:
            with open(output, "w", encoding="utf-8") as f:
                con = _console(file=f, width=width)
                reporting.render_rich(doc, con, top=top)
                privacy_report.render_rich(safety, con)
        else:
            con = _console(width=width)
            reporting.render_rich(doc, con, top=top)
            privacy_report.render_rich(safety, con)
        return
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        out = _stdout_text()
        out.write(text)
        out.flush()


# -- show -------------------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@click.argument("locator")
@click.option("-m", "--manifest", required=True, envvar="LEAKTRIAGE_MANIFEST", metavar="MANIFEST",
              help="The manifest that names the item (or set LEAKTRIAGE_MANIFEST).")
@click.option("-d", "--dump", default=None, envvar="LEAKTRIAGE_DUMP", metavar="DIR",
              help="The dump folder (for --raw and --text). Default: the dump root recorded in MANIFEST.run.json.")
@click.option("--text", "as_text", is_flag=True,
              help="The message as a person reads it (headers, body, attached messages, attachments, DKIM and "
                   "indicators), or the text of an attachment or document.")
@click.option("--raw", is_flag=True,
              help="Write the item's exact bytes to stdout, after checking them against the manifest's SHA-256.")
@click.option("--json", "as_json", is_flag=True, help="Print the item's records as JSON Lines on stdout instead.")
@click.option("--headers/--no-headers", default=True, show_default=True, help="Show every header field.")
@click.option("--pager/--no-pager", default=True, show_default=True,
              help="With --text on a terminal, page through $PAGER (default: less).")
@click.option("-q", "--quiet", is_flag=True, help="With --text, no notes on stderr (charsets replaced, HTML-only body).")
@click.option("--db", metavar="DB", default=None,
              help="The index (leaktriage index). With --text: personal data highlighted (on a terminal), the sphere "
                   "with its reasons and every piece of personal data listed after the text, and how the message's "
                   "copies corroborate or contradict it. Needed by --thread.")
@click.option("--thread", "as_thread", is_flag=True,
              help="Print the message's thread as an indented tree on stdout (needs --db): every email with its "
                   "copies, missing parents marked, this message marked with *.")
@allow_modified_option
def show(locator, manifest, dump, as_text, raw, as_json, headers, pager, quiet, db, as_thread):
    """Show one item of a manifest: a message, a MIME part, a file or an archive member.

    For a message: its main fields, every header, the MIME tree (types, sizes, file names, digests,
    type mismatches), its problems and findings, and the other copies of it (duplicate groups).

    With --text: the message as a person reads it, as plain UTF-8 on stdout (through a pager on a
    terminal): From, To, Cc, Date, Subject, then the body (the text/plain part, or the HTML part turned
    into text when there is none) decoded with the charset the scan recorded, then each attached
    message the same way, the attachments with their types, sizes and locators, and the DKIM verdicts
    and indicators one per line. On an attachment or a document: its extracted text (PDF, Office, ODF,
    RTF, HTML, plain text); a document without text exits 6 and says why.

    With --raw, the exact original bytes of the item (a message as stored, or a decoded attachment) go
    to stdout, but only after their SHA-256 has been checked against the manifest: nothing is written
    if they differ.

    With --text --db DB: personal data in the text are highlighted on a terminal (piped, the text is
    left as it is), and a privacy block follows it: the message's sphere (work or personal) with its
    confidence and reasons, its sensitive topics, and each piece of personal data with its
    line:column, kind and the rule that validated it (docs/privacy.md).

    \b
    Examples:
      leaktriage show 'INBOX/1.eml' -m manifest.jsonl
      leaktriage show 'INBOX/1.eml' -m manifest.jsonl --text
      leaktriage show 'INBOX/1.eml' -m manifest.jsonl --text --db triage.db
      leaktriage show 'INBOX/1.eml#1.2' -m manifest.jsonl --text --no-pager > facture.txt
      leaktriage show 'INBOX/1.eml#1.2' -m manifest.jsonl --dump ./dump --raw > report.pdf
      export LEAKTRIAGE_MANIFEST=manifest.jsonl; leaktriage show 'Inbox.mbox!mbox:1234'
      leaktriage show 'INBOX/1.eml' -m manifest.jsonl --thread --db triage.db

    \b
    Exit codes: 0 done, 2 usage error, 3/4 manifest unreadable, 5 the bytes in the dump
    differ from the manifest's digest, 6 dump not found, item unreadable, or (--text) a
    document without text, 7 locator not in the manifest.
    """
    from leaktriage.manifest import show as showitem
    if sum(map(bool, (raw, as_json, as_text, as_thread))) > 1:
        raise UsageError("--raw, --json, --text and --thread exclude each other")
    if db and not (as_text or as_thread):
        raise UsageError("--db applies to --text (the message as a person reads it, with its personal data and "
                         "its copies) and --thread")
    if as_thread:
        if not db:
            raise UsageError("--thread needs the search index: --db triage.db (made by leaktriage index)")
        from leaktriage.search import conversation_views as cv
        out = _stdout_text()
        out.write(cv.thread_tree(cv.open_index(db), locator))
        out.flush()
        return
    m = _open_manifest(manifest)
    if manifest == "-":
        raise UsageError("show needs a manifest file, not stdin")
    item = showitem.collect(m, locator)
    if not item.records:
        # a name pasted from another system in another Unicode form (macOS writes NFD: 'e' + U+0301)
        import unicodedata
        for form in ("NFC", "NFD"):
            alt = unicodedata.normalize(form, locator)
            if alt != locator:
                item = showitem.collect(m, alt)
                if item.records:
                    _say("leaktriage: the locator matched in Unicode form %s, as the manifest writes it: %s"
                         % (form, alt), quiet)
                    locator = alt
                    break
    if not item.records:
        hint = showitem.suggest(m, locator)
        raise NotFoundError("locator %r is not in %s%s" % (locator, m.name, hint))
    if raw:
        out = streams.binary("stdout")
        if out.isatty():
            raise UsageError("refusing to write raw bytes to a terminal: redirect stdout to a file or a pipe")
        root = dump_root(m, dump, "--raw")
        data = showitem.raw_bytes(item, root)
        out.write(data)
        out.flush()
        return
    if as_json:
        out = _stdout_text()
        for line in showitem.json_lines(item):
            out.write(line + "\n")
        out.flush()
        return
    if as_text:
        root = dump_root(m, dump, "--text")
        got = showitem.readable(item, root)
        if db:
            from leaktriage.search import conversation_views as cv
            got.text = cv.with_copy_lines(got.text, cv.open_index(db), locator)
        out = streams.binary("stdout")
        text = got.text
        if db:
            from leaktriage.search.privacy_view import PrivacyView, decorate
            view = PrivacyView.open(db)
            try:
                text = decorate(text, item.locator, view, color=out.isatty() and not os.environ.get("NO_COLOR"))
            finally:
                view.close()
        showitem.page(text, out, pager and out.isatty())
        if not quiet:
            for code, sev, where, msg in got.notes:
                _say("leaktriage: %s%s: %s (%s)" % ("" if code in ("html", "status") else code + " ",
                                                     sev, msg, where))
        if got.failed:
            sys.exit(EXIT_DUMP)
        return
    showitem.render(item, _console(stderr=False), headers=headers)


# -- export -----------------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@manifest_arg
@allow_modified_option
@click.option("-f", "--format", "fmt", type=click.Choice(["csv", "jsonl", "json"]), default="csv", show_default=True,
              help="csv (RFC 4180, UTF-8), jsonl (one object per line) or json (one array).")
@click.option("-t", "--table", type=click.Choice(["messages", "attachments", "problems", "text"]), default=None,
              help="Which table to write: messages (the default), attachments, problems, or text (the text of each "
                   "message and attachment; the default with --redact).")
@click.option("--fields", metavar="A,B,...", default=None,
              help="Columns, in this order (default: the table's standard columns; 'all' for every column; "
                   "--list-fields shows them).")
@click.option("--list-fields", is_flag=True, help="List the columns of --table and exit.")
@filter_options
@click.option("-o", "--output", metavar="FILE", default=None, help="Write to FILE instead of stdout.")
@click.option("--bom", is_flag=True, help="Start CSV with a UTF-8 byte-order mark (for Excel).")
@click.option("--no-formula-guard", is_flag=True,
              help="Write CSV cells that start with = + - @ as they are (by default they get a leading ' so a "
                   "spreadsheet does not run them as formulas).")
@click.option("-q", "--quiet", is_flag=True, help="No row count on stderr.")
@click.option("--redact", type=click.Choice(["pii"]), default=None,
              help="With -t text: replace personal data by labelled placeholders ([IBAN], [TÉLÉPHONE], ...); "
                   "needs --redaction-log.")
@click.option("--redaction-log", metavar="FILE", default=None,
              help="With --redact: write what was replaced (locator, field, offsets, kind, placeholder, rule, "
                   "SHA-256 of the removed text) to FILE, one JSON object per line.")
@click.option("--labels", type=click.Choice(["fr", "en"]), default="fr", show_default=True,
              help="Language of the --redact placeholders.")
@click.option("--exclude-sphere", "exclude_sphere", multiple=True, type=click.Choice(["personal", "work", "unknown"]),
              help="Leave out the messages of this sphere (and their attachments and problems); needs --db.")
@click.option("--db", metavar="DB", default=None,
              help="The index of MANIFEST (leaktriage index): the spheres for --exclude-sphere, and the mail "
                   "providers it learned for --redact (personal e-mail addresses).")
@click.option("-d", "--dump", default=None, envvar="LEAKTRIAGE_DUMP", metavar="DIR",
              help="The dump folder (for -t text). Default: the dump root recorded in MANIFEST.run.json.")
def export(manifest, fmt, table, fields, list_fields, output, bom, no_formula_guard, quiet, redact, redaction_log,
           labels, exclude_sphere, db, dump, **kw):
    """Export a table of messages, attachments or problems from MANIFEST ('-' for stdin).

    Columns come in a stable, documented order (or the order given with --fields); lists are joined
    with '; ' in CSV and kept as arrays in JSON. Filters combine with AND; a repeated filter
    matches any of its values. Message filters (--from, --domain, --since, --until, --custodian,
    --has-attachment) also select the attachments and problems of the messages they match.

    \b
    Examples:
      leaktriage export manifest.jsonl > messages.csv
      leaktriage export manifest.jsonl -t attachments --type application/pdf --since 2017-03
      leaktriage export manifest.jsonl -t problems -f jsonl --finding base64 | jq .locator
      leaktriage scan ./dump -o - -q | leaktriage export - --from alice@example.org -f json

    \b
    Exit codes: 0 done (also when no row matched), 2 usage error (unknown field,
    conflicting filters), 3 manifest truncated or hand-edited, 4 newer schema version.

    \b
    Publication (docs/privacy.md):
      leaktriage export manifest.jsonl --db triage.db --redact pii --redaction-log redactions.jsonl \\
          --exclude-sphere personal -f jsonl -o texts.jsonl
    -t text writes one row per message (subject, body text) and per attachment (its text); --redact
    pii replaces the personal data found in them and logs each replacement; --exclude-sphere personal
    leaves the private mail out and says how many messages that was. The evidence is never changed.
    """
    from leaktriage.manifest import export as ex
    from leaktriage.search import redaction
    table = table or ("text" if redact else "messages")
    if redact and table != "text":
        raise UsageError("--redact applies to -t text (the texts of messages and attachments)")
    if redact and not redaction_log:
        raise UsageError("--redact needs --redaction-log FILE (the record of what was withheld, for the editor)")
    if redaction_log and not redact:
        raise UsageError("--redaction-log goes with --redact pii")
    if exclude_sphere and not db:
        raise UsageError("--exclude-sphere needs --db DB (the index, where the spheres are)")
    if list_fields:
        cols, default = (redaction.TEXT_COLUMNS, redaction.TEXT_DEFAULT) if table == "text" else ex.TABLES[table]
        for c in cols:
            click.echo("%s%s" % (c, " (default)" if c in default else ""))
        return
    flt = _filters(kw)
    if table != "text":
        ex.check_filters_for(table, flt)
    cols = redaction.choose_text_fields(fields) if table == "text" else ex.choose_fields(table, fields)
    if bom and fmt != "csv":
        raise UsageError("--bom only applies to --format csv")
    m = _open_manifest(manifest)
    view = None
    if db:
        from leaktriage.search.privacy_view import PrivacyView
        view = PrivacyView.open(db)
    records = m.records()
    drop = None
    if exclude_sphere:
        # withholding private mail on the word of an index of another manifest (or of an older scan)
        # would let through every message it does not know: refused
        from leaktriage.manifest.reader import file_sha256
        built = view.manifest_sha256()
        actual = None
        if manifest != "-":
            m.check_digest()          # hashes the file once, for its MANIFEST.sha256 and for this check
            actual = m.checked_sha256 or file_sha256(manifest)
        if built is None or built != actual:
            raise UsageError("--exclude-sphere: %s was not built from this manifest (%s): the spheres of its messages "
                             "are not known; build the index again: leaktriage index %s --dump DIR -o %s"
                             % (db, "SHA-256 %s..., the index has %s..." % ((actual or "stdin")[:12], (built or "none")[:12]),
                                shlex.quote(manifest), shlex.quote(db)))
        drop = redaction.SphereFilter(view.spheres(), exclude_sphere)
        records = drop.records(records)
    texts = log = None
    if table == "text":
        if manifest == "-":
            raise UsageError("-t text needs a manifest file (its dump is read), not stdin")
        root = dump_root(m, dump, "-t text")
        for target, what in ((output, "-o"), (redaction_log, "--redaction-log")):
            if target and _inside(target, root):
                raise UsageError("%s %s is inside the dump: write it elsewhere (the dump is evidence)" % (what, target))
        from leaktriage.manifest.resolver import Resolver
        log = open(redaction_log, "w", encoding="utf-8") if redaction_log else None
        texts = redaction.TextExport(Resolver(root), view, redact=bool(redact), log=log, language=labels)
    if output:
        fh = open(output, "w", encoding="utf-8", newline="")
    else:
        fh = _stdout_text()
    try:
        if bom:
            fh.write("\ufeff")
        rows = texts.rows(records, flt) if texts is not None else ex.rows(records, table, cols, flt)
        if texts is not None:
            rows = ({c: r[c] for c in cols} for r in rows)
        n = ex.write(fh, rows, cols, fmt, formula_guard=not no_formula_guard)
        fh.flush()
    finally:
        if output:
            fh.close()
        if log is not None:
            log.close()
        if view is not None:
            view.close()
    _say("%d %s exported" % (n, (table if n != 1 else table[:-1]) if table != "text" else
                             "text row" + ("s" if n != 1 else "")), quiet)
    if texts is not None and redact:
        _say("%d personal data replaced in %d items (log: %s)%s" % (
            texts.redactions, texts.items_redacted, redaction_log,
            "" if view is not None else "; without --db, personal e-mail addresses are recognised only on the "
                                        "known mail providers (not those learned from the dump)"), quiet)
    if texts is not None and texts.failed:
        click.echo("leaktriage: warning: %d items could not be read from the dump (their rows say why)" % texts.failed,
                   err=True)
    if drop is not None:
        _say("%d message%s left out (sphere %s)%s" % (drop.dropped, "" if drop.dropped == 1 else "s",
                                                     " or ".join(exclude_sphere),
                                                     "; %d messages not in the index were kept" % drop.not_indexed
                                                     if drop.not_indexed else ""), quiet)
    for w in flt.unmatched_custodians():
        click.echo("leaktriage: warning: %s" % w, err=True)


def _inside(path: str, root: str) -> bool:
    """path (a file to write) lies inside the dump root."""
    p = os.path.realpath(os.path.abspath(path))
    r = os.path.realpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


# -- extract ----------------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@manifest_arg
@allow_modified_option
@click.option("-d", "--dump", default=None, envvar="LEAKTRIAGE_DUMP", metavar="DIR",
              help="The dump folder. Default: the dump root recorded in MANIFEST.run.json.")
@click.option("--to", "out", required=True, metavar="OUT", help="Folder to copy into (created; never inside the dump).")
@click.option("--messages", "with_messages", is_flag=True, help="Also copy the matching messages (as stored).")
@click.option("--no-attachments", is_flag=True, help="Do not copy attachments (use with --messages).")
@filter_options
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
def extract(manifest, dump, out, with_messages, no_attachments, quiet, **kw):
    """Copy attachments (and with --messages, messages) out of the dump, content-addressed.

    Each item is written once to OUT/sha256/ab/abcdef....pdf (its SHA-256 and the extension of its
    detected type, so it opens with a double-click; executables, scripts and macro documents end with
    '_', e.g. .exe_, so that opening them is deliberate), whatever its name and however often it was
    sent; OUT/index.jsonl maps every digest to every locator, original file name, message, mailbox and
    custodian; OUT/by-mailbox/ holds a folder per mailbox with a link per item named after its original
    name (made safe), pointing into the store. Original names are never used inside the store. Every
    item is checked against the manifest's digest before it is written, and every written file is read
    back and hashed. Running it again adds to OUT (existing files are re-checked, not rewritten).
    Every attachment of the manifest is accounted for: extracted, left out by a filter, or listed
    with the reason it was not.

    \b
    Examples:
      leaktriage extract manifest.jsonl --dump ./dump --to ./evidence
      leaktriage extract manifest.jsonl --to ./pdfs --type application/pdf --custodian 'Sarah Watson'
      leaktriage extract manifest.jsonl --to ./mails --messages --no-attachments --from a@example.org

    \b
    Exit codes: 0 done, 2 usage error (OUT inside the dump, conflicting options), 3/4
    manifest unreadable, 5 an item's bytes differ from the manifest (not written), 6 dump
    not found or an item could not be read from it.
    """
    from leaktriage.manifest import extract as xt
    from leaktriage.scanner.sinks import inside
    if no_attachments and not with_messages:
        raise UsageError("--no-attachments without --messages would copy nothing")
    flt = _filters(kw)
    m = _open_manifest(manifest)
    if manifest == "-" and dump is None:
        raise UsageError("with the manifest on stdin, pass --dump DIR")
    root = dump_root(m, dump, "extract")
    if inside(out, root):
        raise UsageError("refusing to write %s inside the dump %s: evidence is read-only" % (out, root))
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError("%s exists and is not a folder" % out)
    try:
        res = xt.extract(m, root, out, flt, attachments=not no_attachments, messages=with_messages,
                         console=None if quiet else _console())
    except (xt.ExtractError, OSError) as exc:
        if isinstance(exc, xt.ExtractError):
            raise UsageError("extract into %s stopped: %s" % (out, exc))
        raise LeaktriageError("extract into %s stopped: %s" % (out, exc))
    if not quiet:
        _say("%d items selected: %d files written, %d already present (re-checked), %d identical copies "
             "deduplicated; index: %s; %d links in %s" % (res.selected, res.written, res.present, res.deduplicated,
                                                          os.path.join(out, "index.jsonl"), res.linked,
                                                          os.path.join(out, xt.VIEW)))
        if not no_attachments:
            _say("%d attachments in the manifest: %d selected, %d left out by the filters, %d not extracted%s"
                 % (res.attachments, res.attachments - res.filtered - len(res.not_extracted), res.filtered,
                    len(res.not_extracted), ":" if res.not_extracted else ""))
        for msg in (res.not_extracted + res.errors)[:20]:
            _say("  " + msg)
        if len(res.not_extracted + res.errors) > 20:
            _say("  ... %d more" % (len(res.not_extracted + res.errors) - 20))
    for w in flt.unmatched_custodians():
        click.echo("leaktriage: warning: %s" % w, err=True)
    if res.mismatched:
        sys.exit(EXIT_INTEGRITY)
    if res.unreadable:
        sys.exit(EXIT_DUMP)


# -- verify -----------------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@manifest_arg
@allow_modified_option
@click.option("-d", "--dump", default=None, envvar="LEAKTRIAGE_DUMP", metavar="DIR",
              help="The dump folder to audit. Default: the dump root recorded in MANIFEST.run.json.")
@click.option("--manifest-only", is_flag=True,
              help="Only check MANIFEST against its MANIFEST.sha256 (or --sha256); do not look at the dump.")
@click.option("--sha256", "expected", metavar="HEX", default=None,
              help="The manifest's expected SHA-256, received separately (instead of MANIFEST.sha256).")
@click.option("--all", "show_all", is_flag=True, help="Also write matched items to stdout (JSONL).")
@click.option("-w", "--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes hashing the dump's files.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def verify(manifest, dump, manifest_only, expected, show_all, workers, quiet):
    """Audit a dump against its manifest, or check a manifest against its digest.

    Every file on disk is hashed and compared with the manifest: matched, modified, missing, new, or
    moved (the same SHA-256 at another path). A file whose digest matches is not parsed again: its
    archive members, messages and attachments match with it. Modified and new files are parsed, and
    their members, messages and attachments compared the same way (a message that moved inside an
    mbox shows as moved). Details go to stdout as JSON Lines (one line per difference, then a
    summary line), a summary table to stderr. The manifest is first checked against
    MANIFEST.sha256 when that file is beside it.

    \b
    Examples:
      leaktriage verify manifest.jsonl --dump ./dump
      leaktriage verify manifest.jsonl --dump ./dump | jq -c 'select(.status=="modified")'
      leaktriage verify --manifest-only manifest.jsonl
      leaktriage verify --manifest-only manifest.jsonl --sha256 c28126b9...

    \b
    Exit codes: 0 everything matched (or the manifest matches its digest), 2 usage error,
    3 manifest truncated or hand-edited, 4 newer schema version, 5 the manifest differs from
    its digest, 6 dump not found (moved?); otherwise 16 plus 1 if items were modified, 2 if
    items are missing, 4 if items are new, 8 if items moved (so 16-31).
    """
    from leaktriage.manifest.reader import check_manifest_digest
    if expected is not None:
        e = expected.strip().lower()
        if len(e) != 64 or any(c not in "0123456789abcdef" for c in e):
            raise UsageError("--sha256 needs 64 hex digits")
    if manifest == "-":
        raise UsageError("verify needs a manifest file, not stdin")
    if manifest_only:
        if dump is not None and "LEAKTRIAGE_DUMP" not in os.environ:
            raise UsageError("--manifest-only and --dump exclude each other")
        status, actual, exp = check_manifest_digest(manifest, expected)
        if status == "ok":
            _say("%s: OK (SHA-256 %s)" % (manifest, actual), quiet)
            return
        if status == "mismatch":
            raise IntegrityError("%s: FAILED: its SHA-256 is %s, expected %s: the manifest was changed after the scan "
                          "or damaged in transit" % (manifest, actual, exp))
        raise ManifestError("%s: cannot check: %s (pass the expected digest with --sha256 HEX)"
                      % (manifest, "no MANIFEST.sha256 beside it" if status == "absent"
                         else "MANIFEST.sha256 is not a sha256sum line"))
    from leaktriage.manifest import verify as audit
    m = _open_manifest(manifest)
    if expected is not None:       # the digest received separately, instead of MANIFEST.sha256
        status, actual, exp = check_manifest_digest(manifest, expected)
        if status == "mismatch" and not allow_modified():
            raise IntegrityError("%s differs from the SHA-256 given with --sha256 (%s, expected %s): an audit "
                                 "against a changed manifest proves nothing; get the original manifest"
                                 % (manifest, actual, exp))
    else:
        status = m.check_digest()     # refuses a manifest changed after the scan (exit 5), like every command
    root = dump_root(m, dump, "verify")
    out = _stdout_text()
    res = audit.audit(m, root, out, show_all=show_all, workers=workers)
    out.flush()
    if not quiet:
        audit.render(res, _console(), manifest_status=status)
    if res.wrong_dump:
        raise DumpError(res.wrong_dump)
    sys.exit(res.exit_code())
