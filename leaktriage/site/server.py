"""Start Datasette on a leaktriage index with the project's own configuration.

    ds = make_datasette("triage.db")           # for tests: ds.client.get("/triage/inbox")
    serve("triage.db", host="127.0.0.1", port=8001)

The index is opened read-only and immutable (it is evidence too); its schema must be the one this
leaktriage writes (an older index: rebuild it with `leaktriage index`). The dump is the one recorded
in the index (meta `dump`) unless given: downloads read it through the resolver.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Optional

from leaktriage.errors import NotFoundError, UsageError

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def check_index(path: str) -> dict:
    """The index's meta table; a clear error when it is not a current leaktriage index."""
    from leaktriage.search.schema import SCHEMA_VERSION
    if not os.path.isfile(path):
        raise NotFoundError("no index at %s (build one with: leaktriage index MANIFEST --dump DIR -o %s)" % (path, path))
    try:
        from urllib.parse import quote
        con = sqlite3.connect("file:%s?mode=ro" % quote(os.path.abspath(path)), uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError("%s is not a leaktriage index (%s)" % (path, exc))
    if meta.get("schema_version") != str(SCHEMA_VERSION) or meta.get("complete") != "yes":
        raise UsageError("%s was built by another version of leaktriage (index schema %s, this one writes %d): "
                         "rebuild it with leaktriage index MANIFEST --dump DIR -o %s"
                         % (path, meta.get("schema_version", "?"), SCHEMA_VERSION, path))
    return meta


def _datasette():
    try:
        from datasette.app import Datasette
        from datasette.plugins import pm
    except ImportError:
        raise UsageError("leaktriage serve needs Datasette: pip install 'leaktriage[serve]'")
    from leaktriage.site import plugin
    if not pm.is_registered(plugin):
        pm.register(plugin, name="leaktriage")
    return Datasette


def make_datasette(path: str, dump: Optional[str] = None):
    """A Datasette instance serving the index with leaktriage's metadata, templates and plugin."""
    from leaktriage.site.config import SETTINGS, metadata
    meta = check_index(path)
    Datasette = _datasette()
    name = Path(path).stem
    md = metadata(name)
    md["plugins"]["leaktriage"] = {"databases": [name], "dump": dump or meta.get("dump")}
    return Datasette(immutables=[path], metadata=md, template_dir=TEMPLATES, settings=dict(SETTINGS))


def serve(path: str, host: str = "127.0.0.1", port: int = 8001, dump: Optional[str] = None, say=None) -> None:
    """Serve until interrupted (Ctrl-C: returns)."""
    ds = make_datasette(path, dump)
    import asyncio
    import uvicorn
    asyncio.run(ds.invoke_startup())
    if say:
        say("leaktriage serve: http://%s:%d/ (the index %s; Ctrl-C to stop)" % (
            "[%s]" % host if ":" in host else host, port, path))
    config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
    uvicorn.Server(config).run()
