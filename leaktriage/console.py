"""Output for people: the Rich console every command draws on (stderr, or a file), and the way
numbers are written for them. NO_COLOR and output that is not a terminal get no colours."""
from __future__ import annotations

import os
from typing import Optional


def _console_class():
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away (| head). Rich exits with status 1 here, as if a bug had happened.
            Its stream now goes to /dev/null; on stdout (data) that ends the command like any closed
            pipe (exit 0, leaktriage.cli.outcome), on stderr (for people) the command carries on, so
            that a closed report pipe never cuts a scan short."""
            self.quiet = True
            try:
                fd = self.file.fileno()
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
            except (OSError, ValueError, AttributeError):
                fd = None
            if fd != 2:
                raise BrokenPipeError(32, "the reader of the output went away")

    return _Console


def make_console(stderr: bool = True, width: Optional[int] = None, file=None):
    """A Rich console on stderr (or on `file`, plain text 100 columns wide unless told otherwise)."""
    Console = _console_class()
    if file is not None:
        return Console(file=file, width=width or 100, no_color=True, color_system=None, highlight=False,
                       soft_wrap=False, emoji=False)
    return Console(stderr=stderr, width=width, no_color=bool(os.environ.get("NO_COLOR")) or None,
                   highlight=False, soft_wrap=False, emoji=False)


def thousands(x) -> str:
    """12,345 for integers; anything else as str()."""
    return "{:,}".format(x) if isinstance(x, int) else str(x)


def human_bytes(n: int) -> str:
    """A size in B, KiB, MiB, GiB or TiB (binary units, one decimal)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)
