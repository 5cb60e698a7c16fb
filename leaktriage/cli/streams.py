"""stdin and stdout as bytes, and stdout as UTF-8 text whatever the locale: the data streams of the
commands (click.get_binary_stream is deprecated and goes in Click 9)."""
from __future__ import annotations

import sys
from typing import BinaryIO


def binary(name: str) -> BinaryIO:
    """The binary stream under sys.stdin or sys.stdout (as replaced by a test runner, if it was)."""
    text = getattr(sys, name)
    buf = getattr(text, "buffer", None)
    return buf if buf is not None else text


class Utf8Stdout:
    """stdout as UTF-8 text whatever the locale (never closed here)."""

    def __init__(self, stream: BinaryIO = None):
        self.b = stream if stream is not None else binary("stdout")

    def write(self, s: str) -> int:
        self.b.write(s.encode("utf-8", "surrogateescape"))
        return len(s)

    def flush(self) -> None:
        self.b.flush()
