"""Command line: a thin Click layer over the library (leaktriage.api and friends).

stdout carries data only (JSON Lines, JSON); people read stderr (Rich report, progress bar).
Exit codes: 0 done (problems in the dump are findings, not failures), 1 error, 2 usage error,
130 interrupted.
"""
from __future__ import annotations

import json
import os
import sys

import click

from leaktriage.cli.options import CONTEXT
from leaktriage.cli.outcome import guarded
from leaktriage.errors import EXIT_INTERRUPTED, UsageError
from leaktriage.version import __version__

# Click's own outcomes pass through the guard untouched (it prints their usage messages itself)
CLICK_OUTCOMES = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


# Commands living in other modules, imported only when used (keeps `leaktriage search` start-up lean).
LAZY_COMMANDS = {
    "report": ("leaktriage.cli.manifest_cmds", "report"),
    "show": ("leaktriage.cli.manifest_cmds", "show"),
    "export": ("leaktriage.cli.manifest_cmds", "export"),
    "extract": ("leaktriage.cli.manifest_cmds", "extract"),
    "verify": ("leaktriage.cli.manifest_cmds", "verify"),
    "index": ("leaktriage.cli.search_cmds", "index"),
    "search": ("leaktriage.cli.search_cmds", "search"),
    "serve": ("leaktriage.cli.search_cmds", "serve"),
    "keys": ("leaktriage.cli.auth_cmds", "keys"),
    "conversations": ("leaktriage.cli.conversation_cmds", "conversations"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        for name in LAZY_COMMANDS:
            if self._load(name) is not None:
                names.add(name)
        return sorted(names)

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        return cmd if cmd is not None else self._load(name)

    def invoke(self, ctx):
        """Every command ends the same way: failures become one line and their exit code."""
        return guarded(lambda: click.Group.invoke(self, ctx), passthrough=CLICK_OUTCOMES)

    def _load(self, name):
        spec = LAZY_COMMANDS.get(name)
        if spec is None:
            return None
        import importlib
        # an import error here is a bug (optional extras are imported inside the commands, which
        # then say what to install): it must show, not make the command silently disappear
        return getattr(importlib.import_module(spec[0]), spec[1])


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="leaktriage")
def cli():
    """Forensic triage of leaked email dumps.

    Walk a dump (loose .eml, Maildir, mbox, archives, Outlook files), decode every message, hash
    everything, and write a deterministic JSON Lines manifest that other tools can read.

    \b
    Example:
      leaktriage scan ./dump -o manifest.jsonl
      jq -c 'select(.record=="problem") | [.code, .locator]' manifest.jsonl
    """


@cli.command(context_settings=CONTEXT)
@click.argument("dump", type=click.Path(file_okay=True, dir_okay=True, path_type=str))
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Manifest to write ('-' for stdout). Default: DUMPNAME.manifest.jsonl in the current folder.")
@click.option("-w", "--workers", type=click.IntRange(1, 256), default=None,
              help="Parser processes (default: number of CPUs). The manifest is identical for any value.")
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Run the scan on a Dask cluster: tcp://HOST:8786 (a running scheduler; the workers must "
                   "see the dump at the same path) or local:N (N worker processes on this machine). Needs "
                   "pip install 'leaktriage[cluster]'. The manifest is identical to a local scan; see "
                   "docs/cluster.md.")
@click.option("--hash", "hashes", default="sha256", show_default=True, metavar="LIST",
              help="Digests to compute, comma-separated: sha256 (always), md5, sha1.")
@click.option("--max-depth", type=click.IntRange(1, 1000), default=24, show_default=True,
              help="Deepest nesting opened (archive in archive in message ...).")
@click.option("--dkim-keys", "dkim_keys", default=None, metavar="PATH",
              help="DKIM key store: a JSON object {\"selector._domainkey.domain\": \"v=DKIM1; p=...\"} or a "
                   "folder of files named selector._domainkey.domain[.txt]. Without it, signatures are "
                   "checked offline and report no-key.")
@click.option("--dns", is_flag=True,
              help="Also look up DKIM keys missing from the key store in live DNS. Off by default: DNS "
                   "queries reveal what you are investigating.")
@click.option("--run-record", default=None, metavar="FILE",
              help="Where to write the run record (volatile facts: times, host). Default: MANIFEST.run.json.")
@click.option("--item-timeout", type=click.FloatRange(0), default=300.0, show_default=True, metavar="SECONDS",
              help="Time one message may take before it is skipped with a limit.time problem (0: no limit).")
@click.option("--db", "db", default=None, metavar="FILE",
              help="Also build the search database (SQLite FTS5) in the same run; see `leaktriage index`.")
@click.option("--resume", is_flag=True,
              help="Carry on an interrupted scan (Ctrl-C, kill, power loss) into the same -o FILE; the "
                   "result is byte-identical to an uninterrupted scan.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no report on stderr.")
@click.option("--no-report", is_flag=True, help="No report at the end (progress still shown on a terminal).")
def scan(dump, output, workers, cluster, hashes, max_depth, dkim_keys, dns, item_timeout, run_record, db, resume, quiet,
         no_report):
    """Scan DUMP and write its manifest (JSON Lines).

    Every file and every email is accounted for: one `file` record per file, one `message` record
    per email, one `part` record per MIME entity, and a `problem` record for every defect, each
    with a locator that says exactly where it is. The dump is only read, never written.

    DUMP is a folder, or a single file (an mbox, PST, archive or message) scanned as a one-file
    dump whose locator is the file's name.

    \b
    Examples:
      leaktriage scan ./dump -o manifest.jsonl
      leaktriage scan ./dump -o - --quiet | jq -c 'select(.record=="message") | .subject'
      leaktriage scan ./dump -o m.jsonl --hash sha256,md5,sha1 --workers 2
      leaktriage scan ./dump -o m.jsonl --resume     # after Ctrl-C, kill or a crash
      leaktriage scan ./dump -o m.jsonl --dkim-keys keys.json --db triage.db
      leaktriage scan Inbox.mbox -o inbox.manifest.jsonl
      leaktriage scan /mnt/leak -o m.jsonl --cluster tcp://scheduler:8786
    """
    from leaktriage.api import Options, scan as do_scan
    from leaktriage.pool import default_workers
    from leaktriage.containers import Limits
    algos = []
    for h in hashes.split(","):
        h = h.strip().lower().replace("-", "")
        if h and h not in algos:
            algos.append(h)
    if "sha256" not in algos:
        algos.insert(0, "sha256")
    bad = [a for a in algos if a not in ("sha256", "md5", "sha1")]
    if bad:
        raise click.BadParameter("unknown digest %s (choose from sha256, md5, sha1)" % ", ".join(bad),
                                 param_hint="--hash")
    if output is None:
        name = os.path.basename(os.path.normpath(os.path.abspath(dump))) or "dump"
        output = name + ".manifest.jsonl"
    opts = Options(algorithms=tuple(algos), workers=workers or default_workers(),
                   limits=Limits(max_depth=max_depth),
                   keystore=os.path.abspath(dkim_keys) if dkim_keys else None, dns=dns,
                   item_timeout=item_timeout, cluster=cluster)
    if db:     # checked before the scan, not after it
        from leaktriage.scanner.sinks import inside
        if output == "-":
            raise UsageError("--db needs the manifest in a file (-o FILE)")
        if os.path.isdir(db):
            raise UsageError("--db %s is a folder: give the database file to create" % db)
        if inside(db, dump):
            raise UsageError("refusing to write the search database %s inside the dump %s: evidence is read-only"
                             % (db, dump))
    if cluster and workers:
        raise click.BadParameter("--workers is for a scan on this machine; a cluster has its own workers",
                                 param_hint="--cluster")
    if cluster:
        from leaktriage.cluster import parse_address
        parse_address(cluster)
    tty = sys.stderr.isatty()
    res = do_scan(dump, output, opts, progress=(not quiet and tty), run_record=run_record,
                  argv=sys.argv[1:], resume=resume)
    if res.interrupted:
        if output == "-":
            click.echo("leaktriage: interrupted; the manifest written so far is partial (no summary record).",
                       err=True)
        else:
            click.echo("leaktriage: interrupted; %s.partial holds the records of the %d entries finished so far. "
                       "To finish the scan, run the same command with --resume." % (output, res.units_done), err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not quiet and not no_report:
        from leaktriage.console import make_console
        from leaktriage.manifest.summary_view import render
        render(res.summary, make_console(), manifest=None if output == "-" else output,
               digest=res.manifest_sha256, dump=dump, db=db)
    if db:
        from leaktriage.search.build import index_scan
        stats = index_scan(output, dump, db)
        if not quiet:
            click.echo("Search database: %s (%s)" % (db, stats), err=True)


@cli.command(context_settings=CONTEXT)
def schema():
    """Print the JSON Schema of a manifest line (draft 2020-12).

    \b
    Example:
      leaktriage schema > manifest.schema.json
    """
    from leaktriage.model.records import json_schema
    click.echo(json.dumps(json_schema(), indent=1, sort_keys=True, ensure_ascii=False))


def main():
    guarded(lambda: cli(prog_name="leaktriage"), passthrough=CLICK_OUTCOMES)


if __name__ == "__main__":
    main()
