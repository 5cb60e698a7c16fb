"""`leaktriage index` and `leaktriage search` (loaded lazily by cli.LazyGroup).

The search path is timed as a whole process, so this module imports click only; everything else
is imported inside the commands (rich only when a table is drawn on a terminal).
"""
from __future__ import annotations

import sys

import click

from leaktriage.cli.options import CONTEXT, allow_modified, allow_modified_option
from leaktriage.errors import LeaktriageError, UsageError


@click.command(context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=str))
@click.option("--dump", "dump", default=None, type=click.Path(path_type=str),
              help="The dump the manifest describes (message text is re-read from it); default: the one its "
                   "run record (MANIFEST.run.json) names.")
@click.option("-o", "--output", "db", default="triage.db", show_default=True, metavar="DB",
              help="SQLite database to create or update.")
@click.option("-w", "--workers", type=click.IntRange(0, 256), default=0,
              help="Text extraction processes (default: number of CPUs).")
@click.option("--no-attachment-text", is_flag=True,
              help="Index attachment names only, not the text of attachments (PDF, DOCX, XLSX, PPTX, ODF, RTF, "
                   "HTML, plain text) and of the documents in attached archives.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@allow_modified_option
def index(manifest, dump, db, workers, no_attachment_text, quiet):
    """Build or update a searchable SQLite database (FTS5) from MANIFEST and its dump.

    Re-indexing after a new scan of a grown dump updates the database in place: unchanged
    messages (same locator, same SHA-256, same manifest record) are kept, others are added,
    re-indexed or removed. The database opens in Datasette (`datasette triage.db`). Every message
    also gets its sphere (work or personal), sensitive topics and validated personal data
    (search: sphere:, sensitive:, pii:; docs/privacy.md).

    Over the whole dump it also builds the conversations (docs/conversations.md): threads (messages
    thread_id and parent, table threads), the comparison of the copies of every email stored more
    than once (findings copy.contradiction and copy.corroborated), near-duplicate bodies and
    documents, and the correspondents; `leaktriage conversations` exports them.

    \b
    Examples:
      leaktriage index manifest.jsonl --dump ./dump -o triage.db
      leaktriage search triage.db 'from:mercier facture date:2017-03..2017-04 type:pdf'
    """
    import os
    from leaktriage.search.build import build_index
    if os.path.isdir(db):
        raise UsageError("%s is a directory" % db)
    from leaktriage.cli.manifest_cmds import dump_root
    from leaktriage.manifest.reader import Manifest
    dump = dump_root(Manifest(manifest, allow_modified=True), dump, "index")   # the manifest is checked by the build
    dump_abs = os.path.realpath(dump)
    if os.path.realpath(os.path.abspath(db)).startswith(dump_abs + os.sep):
        raise UsageError("the database cannot be written inside the dump (%s)" % dump)
    def show_progress(done, total):
        click.echo("\rindexing %d/%d messages" % (done, total), err=True, nl=False)

    progress = show_progress if not quiet and sys.stderr.isatty() else None
    try:
        st = build_index(manifest, dump, db, workers=workers, attachment_text=not no_attachment_text,
                         progress=progress, allow_modified=allow_modified())
    except ValueError as exc:
        raise LeaktriageError(str(exc))
    if progress:
        click.echo("", err=True)
    if not quiet:
        click.echo("%s: %d messages (%d added, %d updated, %d removed, %d unchanged), %d problems "
                   "(%d from indexing), %.1f s, %.1f MB"
                   % (db, st.messages, st.added, st.updated, st.removed, st.unchanged, st.problems,
                      st.text_failures, st.seconds, st.db_bytes / 1e6), err=True)
        if st.attachments:
            click.echo("attachments and documents in attached archives read: %d, with text: %d"
                       % (st.attachments, st.attachments_with_text), err=True)
        if st.text_codes:
            click.echo("problems found while indexing: %s (leaktriage search DB 'problem:CODE' lists them)"
                       % ", ".join("%s %d" % kv for kv in sorted(st.text_codes.items(), key=lambda kv: (-kv[1], kv[0]))),
                       err=True)
        from leaktriage.search.privacy_report import summary_line
        line = summary_line(db)
        if line:
            click.echo(line, err=True)


class _FormatChoice(click.Choice):
    """-f's choices; a query word that starts with -f ('-facture': NOT facture) reaches here as
    `-f acture`: say how to pass it."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail("%r is not one of %s. A query that starts with -word (as in -facture) needs -- before it: "
                      "leaktriage search DB -- -facture ...; or write NOT facture"
                      % (value, ", ".join(self.choices)), param, ctx)


@click.command(context_settings=CONTEXT)
@click.argument("db", type=click.Path(dir_okay=False, path_type=str))
@click.argument("query", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", type=_FormatChoice(["auto", "table", "jsonl", "locators"]), default="auto",
              show_default=True, help="auto: a table on a terminal, JSON Lines otherwise.")
@click.option("-c", "--count", "count_only", is_flag=True,
              help="Print the number of matching emails only (copies of one email count once; with -f jsonl: "
                   "{\"emails\": N, \"copies\": M}).")
@click.option("-n", "--limit", type=click.IntRange(0), default=None,
              help="At most N hits (default: 50 in a table, all otherwise; 0 = all).")
@click.option("--sort", type=click.Choice(["newest", "oldest", "relevance"]), default="newest", show_default=True)
@click.option("--no-snippets", is_flag=True, help="JSON Lines without the snippet field (faster).")
@click.option("--all-copies", is_flag=True,
              help="One hit per stored copy (the Inbox and the Sent copy of an email are two hits), and "
                   "--count counts copies.")
def search(db, query, fmt, count_only, limit, sort, no_snippets, all_copies):
    """Search the index DB built by `leaktriage index`.

    One hit per email: the copies of an email held in several mailboxes are one hit, which says how
    many copies exist and where (`copies` and `stored` in JSON Lines); --all-copies lists them one by
    one. QUERY is free text plus fields, as in notmuch or Gmail; words match without regard to case,
    accents, ligatures or apostrophes ("facture" finds "Facturé", "lecoeur" finds "Lecœur", "ndiaye"
    finds "N'Diaye"); free text covers the body and the text of attachments (PDF, Office, ...):

    \b
      "exact phrase"   word*            prefix
      from:  to:  cc:  subject:  filename:  body:  attachment:    names, addresses or words
      in:attachment  in:body  in:subject       where the free words of the query are looked for
      date:2017-03..2017-04  date:2017  date:..2017-04-15
      has:attachment  type:pdf  sha256:HEX  dkim:pass  dkim:body-hash-mismatch  id:MESSAGE-ID
      risk:executable  risk:macro  risk:script  risk:disguised  has:risk
      text:ocr  text:scan  text:none  text:encrypted  text:failed    attachment text extraction
      mailbox:Inbox  custodian:mercier  finding:auth.dkim_body_hash_mismatch  problem:text.*
      sphere:personal  sensitive:health  pii:iban  pii:any     private mail, sensitive topics, personal data
      thread:t0123...  corroborated:yes  finding:copy.contradiction  near:yes  near:attachment
      AND  OR  NOT  -word  ( )        juxtaposition means AND

    \b
    Examples:
      leaktriage search triage.db 'from:mercier to:@example.fr date:2017-03 facture type:pdf'
      leaktriage search triage.db --count 'réunion OR meeting'
      leaktriage search triage.db -f jsonl 'has:attachment NOT dkim:pass' | jq -r .locator
      leaktriage search triage.db 'in:attachment iban' --all-copies -f locators
      leaktriage search triage.db 'text:scan type:pdf'          # scanned PDFs that need OCR
    """
    from leaktriage.cli.fast_search import run_search
    code = run_search(db, " ".join(query), fmt, count_only, limit, sort, no_snippets, all_copies)
    if code:
        sys.exit(code)


@click.command(context_settings=CONTEXT)
@click.argument("db", type=click.Path(dir_okay=False, path_type=str))
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default answers this machine only; 0.0.0.0 would open the whole "
                   "leak to the network.")
@click.option("-d", "--dump", default=None, type=click.Path(exists=True, file_okay=False, path_type=str),
              help="The dump, for downloading attachments (default: the one recorded in the index).")
def serve(db, port, host, dump):
    """Browse the index DB in a web browser (Datasette, with leaktriage's configuration).

    Needs the serve extra: pip install 'leaktriage[serve]'. The site opens on the emails (one row per
    email, newest first: date, subject, from, to, custodians, copies, attachments, DKIM verdict),
    with facets by month, custodian, DKIM verdict, attachment type and danger. The search box takes
    leaktriage's query language (from:, to:, date:, dkim:, has:attachment, risk:, text:, ...). A
    message page reads like an email: headers, text, attachments (downloaded through the resolver,
    checked against the manifest's SHA-256), verdicts and indicators, the other copies, the thread.
    Canned queries list disguised executables, DKIM body-hash mismatches, documents modified after
    sending, scans that need OCR and attachments whose text could not be read.

    \b
    Examples:
      leaktriage serve triage.db                  # http://127.0.0.1:8001/
      leaktriage serve triage.db --port 8080 --dump /mnt/leak

    \b
    Exit codes: 2 usage error (not a current index, Datasette missing), 7 no index
    at DB, 130 stopped (Ctrl-C).
    """
    from leaktriage.site.server import serve as run_site
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("leaktriage: warning: listening on %s: anyone who can reach this machine can read the leak"
                   % host, err=True)
    run_site(db, host=host, port=port, dump=dump, say=lambda m: click.echo(m, err=True))
    sys.exit(130)   # uvicorn returns once it was told to stop (Ctrl-C or SIGTERM)
