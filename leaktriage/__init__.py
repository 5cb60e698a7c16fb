"""leaktriage: forensic triage of leaked email dumps.

Library use::

    from leaktriage import scan, Options
    result = scan("dump/", "manifest.jsonl", Options(workers=2))
    print(result.summary["messages"]["total"])
"""
from leaktriage.version import __version__

__all__ = ["scan", "Options", "ScanResult", "__version__"]


def __getattr__(name):
    # the scanning machinery is imported on first use, so that light commands (search) start fast
    if name in ("scan", "Options", "ScanResult"):
        from leaktriage import api
        return getattr(api, name)
    raise AttributeError(name)
