"""docs/text.md lists every problem code with its registry severity and description, and every format
that has a reader."""
import re

from leaktriage.text import FORMATS, TEXT_CODES
from test_text_common import REPO

DOC = (REPO / "docs" / "text.md").read_text(encoding="utf-8")


def test_every_code_is_documented_as_registered():
    rows = dict((m.group(1), (m.group(2), m.group(3))) for m in
                re.finditer(r"^\| `(text\.[a-z_]+)` \| (\w+) \| (.+) \|$", DOC, re.M))
    assert rows == {code: (sev, desc) for code, (sev, desc) in TEXT_CODES.items()}


def test_every_extracted_format_is_in_the_format_table():
    table = DOC.split("## Formats and detection", 1)[1].split("## Limits", 1)[0]
    for f in FORMATS:
        if f.reader:
            assert re.search(r"^\| [^|]*\b%s\b" % f.name, table, re.M), f.name
