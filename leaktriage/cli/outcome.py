"""How every command ends: the one place where exceptions become a line on stderr and an exit code.

Used by the Click group (leaktriage.cli.main) for every command and by the Click-free search path
(leaktriage.cli.entry), so both end the same way. No Click import here.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Tuple, Type, TypeVar

from leaktriage.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, LeaktriageError

T = TypeVar("T")


def say(message: str) -> None:
    """One line for people on stderr (never raises: stderr may be closed too)."""
    try:
        sys.stderr.write(message.rstrip("\n") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def quiet_stdout() -> None:
    """The reader of stdout went away (| head): point stdout at /dev/null so that nothing else
    (the interpreter's final flush included) complains about the closed pipe."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def guarded(fn: Callable[[], T], passthrough: Tuple[Type[BaseException], ...] = ()) -> T:
    """Run fn(); turn expected failures into one line and their exit code (SystemExit)."""
    import signal
    import threading
    from leaktriage.errors import on_sigint
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        return fn()
    except passthrough:
        raise
    except LeaktriageError as exc:
        say("leaktriage: error: %s" % exc)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        quiet_stdout()
        sys.exit(EXIT_OK)
    except KeyboardInterrupt:
        say("leaktriage: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        say("leaktriage: error: %s" % exc)
        sys.exit(EXIT_ERROR)
    except RecursionError as exc:  # a bug (hostile input must never get here): one line all the same
        if os.environ.get("LEAKTRIAGE_DEBUG"):
            raise
        say("leaktriage: internal error: RecursionError: %s (set LEAKTRIAGE_DEBUG=1 for the traceback and "
            "please report it)" % exc)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback only on request
        if os.environ.get("LEAKTRIAGE_DEBUG"):
            raise
        say("leaktriage: internal error: %s: %s (set LEAKTRIAGE_DEBUG=1 for the traceback and please report it)"
            % (type(exc).__name__, exc))
        sys.exit(EXIT_ERROR)
