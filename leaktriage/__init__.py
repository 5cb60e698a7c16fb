"""leaktriage: forensic triage of leaked email dumps.

Library use::

    from leaktriage import scan, Options
    result = scan("dump/", "manifest.jsonl", Options(workers=2))
    print(result.summary["messages"]["total"])
"""
__version__ = "0.1.0"

from .api import Options, ScanResult, scan  # noqa: E402,F401

__all__ = ["scan", "Options", "ScanResult", "__version__"]
