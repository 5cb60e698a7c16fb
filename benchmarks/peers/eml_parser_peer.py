"""eml_parser (PyPI ``eml_parser``) with its default settings, on every message file.

``EmlParser().decode_email_bytes(raw)``: headers, bodies, URLs/IPs/domains found in the bodies, and
every attachment hashed (md5, sha1, sha256, sha512). Units = attachments reported.
Runs in the peers virtualenv that run.py creates (eml_parser is not a dependency of leaktriage).
"""
import sys
from importlib.metadata import version

import eml_parser

from _common import main


def make_parse_one():
    ep = eml_parser.EmlParser()

    def parse_one(raw: bytes) -> int:
        result = ep.decode_email_bytes(raw)
        return len(result.get("attachment") or ())

    return parse_one


if __name__ == "__main__":
    sys.exit(main("eml_parser", version("eml_parser"), make_parse_one()))
