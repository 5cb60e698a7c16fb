"""Every exception leaktriage raises on purpose, and the one table of exit codes.

A library caller catches LeaktriageError (or one of its kinds); the command line maps each kind to
its exit code in one place (leaktriage.cli.main), for every command, with a one-line message and
never a traceback. Defects found *in the dump* are never exceptions: they are problem records.
"""
from __future__ import annotations

from typing import Optional

# -- exit codes (README "Exit codes", docs/cli.md) -------------------------------------------------
EXIT_OK = 0
EXIT_ERROR = 1          # an unexpected error (a bug: please report it), or the system refused (disk full)
EXIT_USAGE = 2          # bad option or argument, conflicting filters, malformed query, output inside the dump
EXIT_MANIFEST = 3       # the manifest cannot be trusted as read: truncated, hand-edited, damaged, not a manifest
EXIT_SCHEMA = 4         # the manifest (or database) was written by a newer leaktriage
EXIT_INTEGRITY = 5      # bytes differ from the digest recorded for them (manifest vs MANIFEST.sha256, item vs manifest)
EXIT_DUMP = 6           # the dump cannot be found or does not hold the item (moved? wrong folder?)
EXIT_NOT_FOUND = 7      # the locator (or database) named is not there
EXIT_VERIFY = 16        # verify found differences: 16 + 1 modified + 2 missing + 4 new + 8 moved
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT) or SIGTERM

EXIT_CODES = {
    EXIT_OK: "done (problems found in the dump are findings, not failures)",
    EXIT_ERROR: "unexpected error (please report it) or a system error such as a full disk",
    EXIT_USAGE: "usage error: bad option, missing argument, malformed query, output inside the dump",
    EXIT_MANIFEST: "the manifest is truncated, hand-edited, damaged or not a manifest",
    EXIT_SCHEMA: "the manifest or database was written by a newer leaktriage",
    EXIT_INTEGRITY: "bytes differ from their recorded digest (nothing is written from them)",
    EXIT_DUMP: "the dump, or an item in it, cannot be found or read",
    EXIT_NOT_FOUND: "the locator is not in the manifest",
    EXIT_VERIFY: "verify found differences (16 + 1 modified + 2 missing + 4 new + 8 moved)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); nothing half-written is left looking complete",
}


class LeaktriageError(Exception):
    """An expected failure: a message for people and the exit code the command line uses."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: Optional[int] = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(LeaktriageError):
    """The caller asked for something that cannot be done as asked (bad option, bad path, ...)."""

    exit_code = EXIT_USAGE


class ManifestError(LeaktriageError):
    """A manifest that cannot be read as written by `leaktriage scan` (the message says where and why)."""

    exit_code = EXIT_MANIFEST

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None):
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path:
            where = "<stdin>" if path == "-" else path
            if line:
                where += ":%d" % line
            where += ": "
        super().__init__(where + message)


class SchemaVersionError(ManifestError):
    """Written by a newer leaktriage (a schema version this one cannot read)."""

    exit_code = EXIT_SCHEMA


class IntegrityError(LeaktriageError):
    """Bytes that differ from the digest recorded for them."""

    exit_code = EXIT_INTEGRITY


class DumpError(LeaktriageError):
    """The dump, or an item in it, cannot be found or read."""

    exit_code = EXIT_DUMP


class NotFoundError(LeaktriageError):
    """A locator that is not in the manifest."""

    exit_code = EXIT_NOT_FOUND


class Interrupted(LeaktriageError):
    """The user stopped a long command (Ctrl-C)."""

    exit_code = EXIT_INTERRUPTED


# Ctrl-C. Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives; arriving
# inside an interpreter callback (os.fork's after-fork hooks, a __del__), it is printed as "Exception
# ignored" and lost, and a command interrupted that way ran to its end and exited 0. The commands'
# handler also remembers it, and a command checks before it makes its result final.
_SIGINT_SEEN = [False]


def on_sigint(signum, frame):
    _SIGINT_SEEN[0] = True
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """KeyboardInterrupt when Ctrl-C was pressed, even if its first KeyboardInterrupt was swallowed."""
    if _SIGINT_SEEN[0]:
        raise KeyboardInterrupt
