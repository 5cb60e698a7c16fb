"""atheris fuzz target for the parsers (message, MIME, mbox, headers).

Run: python tests/fuzz/fuzz_parser.py -max_total_time=60 [corpus_dir]
CI runs it for a bounded time (.ci/run). Any exception is a bug: the parsers must turn every input
into records and problems. The byte-accounting invariant is checked on every input too.
"""
import os
import sys

import atheris

with atheris.instrument_imports():
    from leaktriage.mail import headers, mbox, message
    from leaktriage.content import sniff

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from corpus_util import accounting_errors  # noqa: E402


def TestOneInput(data: bytes) -> None:
    recs, found, _ = message.analyse(data, "f", source="file", parent=None, container_kind=sniff.container_kind)
    parts = [r for r in recs if r["record"] == "part"]
    errs = accounting_errors(data, parts)
    if errs:
        raise AssertionError("bytes not accounted for: %s" % errs[:3])
    sp = mbox.split(data, 0, len(data))
    for e in sp.entries:
        assert 0 <= e.marker_offset < e.offset <= e.end <= len(data)
    headers.parse_addresses(data[:4096])
    headers.parse_date(data[:200].decode("latin-1"))
    sniff.sniff(data, len(data))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
