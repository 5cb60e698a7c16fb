"""Container readers, chosen by sniffed kind: formats are a table, not a chain of ifs.

Each reader has the signature of base.Reader. mbox splitting lives in mbox.py (it needs byte
offsets in the file); the other readers live in this package.
"""
from __future__ import annotations

import importlib
from typing import Dict, Optional, Tuple

from leaktriage.containers.base import Child, Context, Limits, Problem  # noqa: F401

# kind -> (module, function)
READERS: Dict[str, Tuple[str, str]] = {
    "zip": ("archives", "read_zip"),
    "tar": ("archives", "read_tar"),
    "gzip": ("archives", "read_gzip"),
    "bzip2": ("archives", "read_bzip2"),
    "xz": ("archives", "read_xz"),
    "7z": ("archives", "read_7z"),
    "rar": ("archives", "read_rar"),
    "msg": ("outlook", "read_msg"),
    "pst": ("outlook", "read_pst"),
    "tnef": ("tnef", "read_tnef"),
    "emlx": ("emlx", "read_emlx"),
}


def reader(kind: str):
    """The reader for a kind, or None when leaktriage has none (the caller records a problem)."""
    spec = READERS.get(kind)
    if spec is None:
        return None
    try:
        mod = importlib.import_module("." + spec[0], __name__)
    except ImportError:
        return None
    return getattr(mod, spec[1], None)
