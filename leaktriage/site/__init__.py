"""`leaktriage serve`: a browsable site on the search index, built on Datasette (an optional extra:
pip install 'leaktriage[serve]').

    config.py     the Datasette metadata and settings: the inbox view first (one row per email, by
                  date, readable columns, digests left out), facets, canned queries for the findings
    plugin.py     the Datasette plugin: leaktriage's query language in the search box (`q`), the
                  message page (headers, text, attachments with download through the verified resolver,
                  verdicts, indicators, copies, thread), cells made readable, `fold()` for the queries
    server.py     checks the index and starts Datasette (uvicorn) on 127.0.0.1 by default
    templates/    table.html and row.html extend Datasette's own ("default:table.html")
    static/       leaktriage.css

Datasette is imported only here and only when serving: the rest of leaktriage never needs it.
"""
