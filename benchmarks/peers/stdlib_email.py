"""The standard library email parser: parse each file and decode every part.

``--policy compat32`` (the legacy default of ``email.message_from_bytes``) or ``--policy default``
(the modern ``EmailMessage`` API). For each message: ``BytesParser(policy=...).parsebytes(raw)``,
then ``walk()`` every MIME entity and call ``get_payload(decode=True)`` (which undoes base64 and
quoted-printable). Units = MIME entities walked.
"""
import email.parser
import email.policy
import sys

from _common import main

POLICIES = {"compat32": email.policy.compat32, "default": email.policy.default}


def make_parse_one(policy):
    parser = email.parser.BytesParser(policy=policy)

    def parse_one(raw: bytes) -> int:
        msg = parser.parsebytes(raw)
        n = 0
        for part in msg.walk():
            part.get_payload(decode=True)
            n += 1
        return n

    return parse_one


if __name__ == "__main__":
    argv = sys.argv[1:]
    name = "compat32"
    if argv[:1] == ["--policy"] and len(argv) >= 2:
        name, argv = argv[1], argv[2:]
    if name not in POLICIES:
        sys.exit(f"unknown policy {name!r}; choose from {sorted(POLICIES)}")
    sys.exit(main(f"email stdlib ({name})", sys.version.split()[0], make_parse_one(POLICIES[name]), argv))
