"""`leaktriage conversations`: the threads, copy groups, near-duplicates and correspondents of a search
index, for other tools (JSON Lines, GEXF, GraphML, CSV). Data on stdout (or -o FILE), nothing else."""
from __future__ import annotations

import click

from leaktriage.cli.options import CONTEXT
from leaktriage.cli.streams import Utf8Stdout
from leaktriage.errors import UsageError


def _out(output, con):
    if output:
        # the index knows its dump: evidence is read-only, an export never lands inside it
        from leaktriage.scanner.sinks import inside
        row = con.execute("SELECT value FROM meta WHERE key = 'dump'").fetchone()
        if row and row[0] and inside(output, row[0]):
            raise UsageError("refusing to write %s inside the dump %s: evidence is read-only" % (output, row[0]))
        return open(output, "w", encoding="utf-8", newline="")
    return Utf8Stdout()


def _write(records, output, quiet, what, con):
    from leaktriage.conversations import write_jsonl
    fh = _out(output, con)
    try:
        n = write_jsonl(records, fh)
        fh.flush()
    finally:
        if output:
            fh.close()
    if not quiet:
        click.echo("%d %s written" % (n, what), err=True)


_db = click.argument("db", metavar="DB")
_o = click.option("-o", "--output", metavar="FILE", default=None, help="Write to FILE instead of stdout.")
_q = click.option("-q", "--quiet", is_flag=True, help="No count on stderr.")


@click.group(context_settings=CONTEXT)
def conversations():
    """Threads, copies, near-duplicates and correspondents of a search index, for other tools.

    `leaktriage index` computes them over the whole dump (see docs/conversations.md); these commands
    write them out: JSON Lines (keys sorted, one record a line, the same bytes for the same index),
    and the correspondents graph as GEXF or GraphML (Gephi, yEd, networkx) or CSV edges.

    \b
    Examples:
      leaktriage conversations threads triage.db > threads.jsonl
      leaktriage conversations copies triage.db --verdict contradiction | jq .differences
      leaktriage conversations near-duplicates triage.db -o near.jsonl
      leaktriage conversations graph triage.db -f gexf -o correspondents.gexf
    """


@conversations.command(context_settings=CONTEXT)
@_db
@_o
@_q
def threads(db, output, quiet):
    """Every thread (record `thread`: root, messages, emails, missing parents, custodians, dates), then
    every message's place (record `thread_member`: thread_id, parent, parent_missing, method, depth).

    \b
    Example:
      leaktriage conversations threads triage.db | jq -c 'select(.record=="thread" and .missing>0)'
    """
    from leaktriage.search import conversation_views as cv
    con = cv.open_index(db)
    _write(cv.thread_records(con), output, quiet, "thread records", con)


@conversations.command(context_settings=CONTEXT)
@_db
@click.option("--verdict", type=click.Choice(["contradiction", "corroborated", "single-custodian", "incomplete"]),
              multiple=True, help="Only groups with this verdict (repeatable).")
@_o
@_q
def copies(db, verdict, output, quiet):
    """Every email stored more than once (record `copy_group`): its copies, the variants they form, the
    independent custodians of each, and for a contradiction the parts that differ with both locators
    and the differing passages.

    \b
    Example:
      leaktriage conversations copies triage.db --verdict contradiction > contradictions.jsonl
    """
    from leaktriage.search import conversation_views as cv
    con = cv.open_index(db)
    recs = (r for r in cv.copy_records(con) if not verdict or r.get("verdict") in verdict)
    _write(recs, output, quiet, "copy groups", con)


@conversations.command("near-duplicates")
@_db
@click.option("--kind", type=click.Choice(["body", "attachment"]), default=None, help="Only groups of this kind.")
@_o
@_q
def near_duplicates(db, kind, output, quiet):
    """Groups of near-duplicate texts (record `near_duplicate_group`, kind body or attachment): members,
    the links between them with their similarity and differing passages.

    \b
    Example:
      leaktriage conversations near-duplicates triage.db --kind attachment | jq .similarity_min
    """
    from leaktriage.search import conversation_views as cv
    con = cv.open_index(db)
    recs = (r for r in cv.near_records(con) if kind is None or r.get("kind") == kind)
    _write(recs, output, quiet, "near-duplicate groups", con)


@conversations.command(context_settings=CONTEXT)
@_db
@click.option("-f", "--format", "fmt", type=click.Choice(["gexf", "graphml", "csv"]), default="gexf",
              show_default=True, help="gexf (Gephi), graphml (Gephi, yEd, networkx, igraph) or csv (edges).")
@click.option("--no-formula-guard", is_flag=True,
              help="CSV: write cells that start with = + - @ as they are (by default they get a leading ').")
@_o
@_q
def graph(db, fmt, no_formula_guard, output, quiet):
    """Who wrote to whom: people (addresses merged only on a full name, role addresses kept apart) and
    directed edges weighted by the number of emails (copies counted once), with To/Cc/Bcc counts and
    first and last dates.

    \b
    Examples:
      leaktriage conversations graph triage.db -f gexf -o correspondents.gexf
      leaktriage conversations graph triage.db -f csv > edges.csv
    """
    from leaktriage.conversations.people import write_csv, write_gexf, write_graphml
    from leaktriage.search import conversation_views as cv
    if no_formula_guard and fmt != "csv":
        raise UsageError("--no-formula-guard only applies to --format csv")
    con = cv.open_index(db)
    g = cv.graph(con)
    fh = _out(output, con)
    try:
        if fmt == "gexf":
            write_gexf(g, fh)
        elif fmt == "graphml":
            write_graphml(g, fh)
        else:
            write_csv(g, fh, formula_guard=not no_formula_guard)
        fh.flush()
    finally:
        if output:
            fh.close()
    if not quiet:
        click.echo("%d people, %d edges written" % (len(g.nodes), len(g.edges)), err=True)
