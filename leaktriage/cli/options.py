"""Options shared by several commands (Click only: imported by the lean search command too)."""
from __future__ import annotations

import click

# every command, invoked through `leaktriage` or on its own (a Python user, a test calling
# make_context): Click caches a command's help option the first time it builds it
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _remember_allow_modified(ctx, _param, value):
    ctx.meta["leaktriage.allow_modified"] = bool(value)
    return value


# The same option on every command that reads a manifest (report, show, export, extract, verify,
# index, keys recover): without it a manifest that no longer matches its MANIFEST.sha256 is refused.
allow_modified_option = click.option(
    "--allow-modified-manifest", is_flag=True, expose_value=False, callback=_remember_allow_modified,
    help="Read MANIFEST even though it no longer matches its MANIFEST.sha256 (changed after the scan or "
         "damaged in transit). Without it such a manifest is refused (exit 5): its figures cannot be trusted.")


def allow_modified() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get("leaktriage.allow_modified"))
