"""`leaktriage keys ...`: DKIM key stores, including keys derived from the dump itself."""
from __future__ import annotations

import time

import click

from leaktriage.cli.options import CONTEXT, allow_modified, allow_modified_option
from leaktriage.errors import UsageError
from leaktriage.manifest.reader import Manifest
from leaktriage.pool import WorkerPool, default_workers


@click.group(context_settings=CONTEXT)
def keys():
    """DKIM key stores: recover keys from the dump's own signatures.

    \b
    Example:
      leaktriage keys recover manifest.jsonl --dump ./dump -o derived-keys.json
      leaktriage scan ./dump -o manifest2.jsonl --dkim-keys derived-keys.json
    """


@keys.command(context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--dump", "dump", default=None, type=click.Path(),
              help="The dump the manifest was made from (messages are re-read from it); default: the one its run "
                   "record (MANIFEST.run.json) names.")
@click.option("-o", "--output", required=True, metavar="FILE", help="Key store (JSON) to write.")
@click.option("--per-key", default=8, show_default=True, type=click.IntRange(2, 1000),
              help="Signed messages read per (domain, selector).")
@click.option("--all", "include_all", is_flag=True,
              help="Also recover keys for signatures that already verify or fail with a known key.")
@click.option("-w", "--workers", type=click.IntRange(1, 256), default=None,
              help="Processes recovering keys, one key each at a time (default: number of CPUs). Same keys.")
@allow_modified_option
def recover(manifest, dump, output, per_key, include_all, workers):
    """Derive DKIM public keys from pairs of signatures in the dump (RSA modulus = gcd of s^e - m).

    For every signing key (d=, s=) with no key in the key store used for the scan (verdict no-key),
    leaktriage reads a few signed messages back from the dump, picks pairs of signatures itself and
    recovers the RSA modulus; every key is checked against all signatures used. The key store it
    writes marks each key "derived, not anchored": scanning with it shows which messages are
    consistent with each other (signed by one key), not who signed them.

    \b
    Example:
      leaktriage keys recover manifest.jsonl --dump ./dump -o derived-keys.json
    """
    from leaktriage.auth.keyrecover import recover_keys, write_keystore
    from leaktriage.manifest.resolver import ResolveError, Resolver
    from leaktriage.scanner.sinks import inside
    from leaktriage.cli.manifest_cmds import dump_root
    dump = dump_root(Manifest(manifest, allow_modified=True), dump, "keys recover")   # checked when read below
    if inside(output, dump):
        raise UsageError("refusing to write %s inside the dump" % output)
    wanted = {}
    for rec in Manifest(manifest, allow_modified=allow_modified()).records(want=lambda line: b'"dkim":' in line):
        if rec["record"] != "message" or not rec.get("dkim"):
            continue
        for sig in rec["dkim"]:
            if not (sig.get("d") and sig.get("s")):
                continue
            if sig.get("verdict") != "no-key" and not include_all:
                continue
            key = (sig["d"].lower(), sig["s"])
            lst = wanted.setdefault(key, [])
            if len(lst) < per_key and rec["locator"] not in lst:
                lst.append(rec["locator"])
    if not wanted:
        click.echo("No signatures without a key in %s: nothing to recover." % manifest, err=True)
        write_keystore(output, [])
        return
    messages = []
    resolver = Resolver(dump)      # an mbox is split once, not once per message
    for (d, s), locs in sorted(wanted.items()):
        for loc in locs:
            try:
                messages.append(bytes(resolver.item(loc, unquoted=True)))
            except ResolveError as exc:
                click.echo("skipping %s: %s" % (loc, exc), err=True)
    # one pair of signatures per key at least, about 30 s each at 2048 bits (16 keys took 9 min 48 s
    # in one process); the keys are shared among the workers, which run in child processes even when
    # there is one: a gcd of two signatures is one C call of seconds that no Ctrl-C interrupts
    workers = min(workers or default_workers(), len(wanted))
    click.echo("Recovering keys for %d (domain, selector) pairs from %d messages with %d worker%s; a 2048-bit "
               "key takes about 30 s per pair tried: expect %s or more."
               % (len(wanted), len(messages), workers, "" if workers == 1 else "s",
                  _minutes(30 * -(-len(wanted) // workers))), err=True)
    t0 = time.monotonic()
    tried = set()

    def as_they_come(fn, tasks):
        """The pool's results, each key said on stderr as soon as it is done (a run takes minutes)."""
        tasks = list(tasks)
        for n, (task, key) in enumerate(zip(tasks, pool.imap(fn, tasks)), 1):
            name = "%s._domainkey.%s" % (task[1], task[0])
            tried.add(name)
            what = ("%d-bit key, verified %s signatures" % (key.get("bits", 0), key.get("signatures_verified"))
                    if key else "not recovered (no pair of its signatures gives a key: altered headers?)")
            click.echo("  [%d/%d, %s] %s: %s" % (n, len(tasks), _minutes(round(time.monotonic() - t0)), name, what),
                       err=True)
            yield key

    with WorkerPool(workers, window=workers) as pool:
        found = recover_keys(messages, map_fn=as_they_come)
    write_keystore(output, found)
    untried = sorted("%s._domainkey.%s" % (s, d) for (d, s) in wanted if "%s._domainkey.%s" % (s, d) not in tried)
    for m in untried:
        click.echo("  %s: not recovered (fewer than two usable signatures)" % m, err=True)
    click.echo("Wrote %s (%d keys, provenance: derived, not anchored)." % (output, len(found)), err=True)


def _minutes(seconds: int) -> str:
    return "%d s" % seconds if seconds < 90 else "%d min" % round(seconds / 60)
