"""Container readers, chosen by sniffed kind: formats are a table, not a chain of ifs.

Each reader has the signature of base.Reader. mbox splitting lives in mbox.py (it needs byte
offsets in the file); the other readers live in this package, one module per format (zip.py,
tar.py, compressed.py for gzip/bzip2/xz, sevenzip.py, rar.py, outlook.py, tnef.py, emlx.py) with
what the archive readers share in streams.py.
"""
from __future__ import annotations

import importlib
from typing import Dict, Optional, Tuple

from leaktriage.containers.base import Child, Context, Limits, Problem  # noqa: F401

# kind -> (module, function)
READERS: Dict[str, Tuple[str, str]] = {
    "zip": ("zip", "read_zip"),
    "tar": ("tar", "read_tar"),
    "gzip": ("compressed", "read_gzip"),
    "bzip2": ("compressed", "read_bzip2"),
    "xz": ("compressed", "read_xz"),
    "7z": ("sevenzip", "read_7z"),
    "rar": ("rar", "read_rar"),
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
