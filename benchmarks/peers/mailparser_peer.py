"""mail-parser (PyPI ``mail-parser``, import ``mailparser``) on every message file.

``mailparser.parse_from_bytes(raw)`` parses the whole message eagerly (headers, text bodies,
attachments with their decoded or base64 payloads, defects). Units = attachments reported.
Runs in the peers virtualenv that run.py creates (mail-parser is not a dependency of leaktriage).
"""
import sys
from importlib.metadata import version

import mailparser

from _common import main


def parse_one(raw: bytes) -> int:
    mail = mailparser.parse_from_bytes(raw)
    return len(mail.attachments)


if __name__ == "__main__":
    sys.exit(main("mail-parser", version("mail-parser"), parse_one))
