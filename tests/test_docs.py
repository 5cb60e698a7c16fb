"""The docs describe what the code does: generated reference is current, every field and code documented."""
from pathlib import Path

from click.testing import CliRunner

from leaktriage.model import docgen, problems, records
from leaktriage.cli.main import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_manifest_reference_is_current():
    assert (DOCS / "manifest.md").read_text(encoding="utf-8") == docgen.generate(), \
        "docs/manifest.md is stale: run python -m leaktriage.model.docgen > docs/manifest.md"


def test_every_field_and_code_documented():
    text = (DOCS / "manifest.md").read_text(encoding="utf-8")
    for kind, fields in records.FIELDS.items():
        assert "## `%s` records" % kind in text
        for name, (_schema, desc) in fields.items():
            assert "`%s`" % name in text and desc.strip(), (kind, name)
    for code in problems.CODES:
        assert "`%s`" % code in text


def test_every_command_has_help_with_example():
    for name, cmd in cli.commands.items():
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0
        assert "Example" in r.output, name
