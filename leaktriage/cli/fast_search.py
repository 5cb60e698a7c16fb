"""What `leaktriage search` does once its arguments are parsed, without Click.

Every query is a whole process, and importing Click costs about as much as Python's own start-up
(~25 ms here), so the console script (leaktriage.cli.entry) parses the plain forms of `leaktriage
search` itself and calls run_search(); anything else, including every malformed command line and
--help, goes through Click (commands/search_cmds.py), which calls the same function.
"""
from __future__ import annotations

import os
import sys

from leaktriage.errors import EXIT_OK, EXIT_USAGE

FORMATS = ("auto", "table", "jsonl", "locators")
SORTS = ("newest", "oldest", "relevance")


def run_search(db: str, query: str, fmt: str = "auto", count_only: bool = False, limit: int | None = None,
               sort: str = "newest", no_snippets: bool = False, all_copies: bool = False) -> int:
    """Run one search and write its output to stdout; returns the exit code.

    Hits are emails: the copies of one email (the scan's same-email groups) are one hit that says how
    many copies there are and where; all_copies gives every stored copy as a hit of its own."""
    from leaktriage.search.query import QueryError
    from leaktriage.search.engine import SearchError, count, open_db, search as run
    try:
        if not os.path.isfile(db) and any(os.path.isfile(w) for w in query.split()):
            given = [w for w in query.split() if os.path.isfile(w)][0]
            raise SearchError("no index at %s; the index comes first: leaktriage search %s QUERY" % (db, given))
        con = open_db(db)
        if "finding:" in query.lower() or "problem:" in query.lower():
            from leaktriage.search.engine import unknown_codes
            for note in unknown_codes(con, query):
                sys.stderr.write("leaktriage: note: %s\n" % note)
        if count_only:
            n = count(con, query, copies=all_copies)
            if fmt == "jsonl":   # both figures, as data
                copies = n if all_copies else count(con, query, copies=True)
                sys.stdout.write('{"emails": %d, "copies": %d}\n' % (count(con, query) if all_copies else n, copies))
                return EXIT_OK
            sys.stdout.write("%d\n" % n)
            if sys.stderr.isatty():   # for a person: what the number counts, and the other figure
                other = count(con, query, copies=not all_copies)
                emails, copies = (other, n) if all_copies else (n, other)
                sys.stderr.write("%s email%s, %s stored cop%s\n" % ("{:,}".format(emails), "" if emails == 1 else "s",
                                                                     "{:,}".format(copies), "y" if copies == 1 else "ies"))
            return EXIT_OK
        if fmt == "auto":
            fmt = "table" if sys.stdout.isatty() else "jsonl"
        if fmt == "table":
            from leaktriage.search.engine import render_table
            lim = 50 if limit is None else (limit or None)
            total = count(con, query, copies=all_copies)
            render_table(run(con, query, sort=sort, limit=lim, all_copies=all_copies), query, total, lim,
                         unit="stored copies" if all_copies else "emails")
            return EXIT_OK
        hits = run(con, query, sort=sort, limit=limit or None, snippets=(fmt == "jsonl" and not no_snippets),
                   all_copies=all_copies)
        from leaktriage.search.engine import write_jsonl, write_locators
        (write_jsonl if fmt == "jsonl" else write_locators)(hits, sys.stdout)
        return EXIT_OK
    except QueryError as exc:
        sys.stderr.write("leaktriage: bad query: %s\n%s\n" % (exc, exc.pointer()))
        return EXIT_USAGE
    except SearchError as exc:
        sys.stderr.write("leaktriage: error: %s\n" % exc)
        return EXIT_USAGE
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK


def parse_plain(args: list[str]) -> dict | None:
    """The arguments after `search`, parsed as Click would, or None when they are anything but the
    plain, valid forms (then Click parses them and owns every message)."""
    out: dict = {"fmt": "auto", "count_only": False, "limit": None, "sort": "newest", "no_snippets": False,
                 "all_copies": False}
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and a != "-":
            name, eq, val = a.partition("=")
            if name in ("-c", "--count") and not eq:
                out["count_only"] = True
            elif name == "--no-snippets" and not eq:
                out["no_snippets"] = True
            elif name == "--all-copies" and not eq:
                out["all_copies"] = True
            elif name in ("-f", "--format", "-n", "--limit", "--sort"):
                if not eq:
                    if i + 1 >= len(args):
                        return None
                    i += 1
                    val = args[i]
                elif name.startswith("-") and not name.startswith("--"):
                    return None  # "-f=x" means something else to Click
                if name in ("-f", "--format"):
                    if val not in FORMATS:
                        return None
                    out["fmt"] = val
                elif name == "--sort":
                    if val not in SORTS:
                        return None
                    out["sort"] = val
                else:
                    if not val.isdigit() or not val.isascii():
                        return None
                    out["limit"] = int(val)
            else:
                return None  # --help, --, -word, combined short flags, unknown options
        else:
            pos.append(a)
        i += 1
    if len(pos) < 2 or os.path.isdir(pos[0]):
        return None
    out["db"] = pos[0]
    out["query"] = " ".join(pos[1:])
    return out
