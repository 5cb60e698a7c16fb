"""The floor: read every message file and compute its SHA-256 in Python (no parsing at all)."""
import hashlib
import sys

from _common import main


def parse_one(raw: bytes) -> int:
    hashlib.sha256(raw).digest()
    return 1


if __name__ == "__main__":
    sys.exit(main("read+sha256", sys.version.split()[0], parse_one))
