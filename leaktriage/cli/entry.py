"""The `leaktriage` console script. `leaktriage search` in its plain forms runs without importing
Click (a query is a whole process, and start-up is most of its time); everything else is Click's
(leaktriage.cli.main)."""
from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["search"]:
        from leaktriage.cli.fast_search import parse_plain, run_search
        parsed = parse_plain(argv[1:])
        if parsed is not None:
            try:
                code = run_search(**parsed)
            except KeyboardInterrupt:
                sys.stderr.write("leaktriage: interrupted\n")
                code = 130
            try:
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (| head): not an error
                import os
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(code)
    from leaktriage.cli.main import main as click_main
    click_main()


if __name__ == "__main__":
    main()
