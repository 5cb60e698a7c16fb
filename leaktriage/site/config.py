"""Datasette metadata and settings for a leaktriage index: what a journalist sees first.

metadata(db_name) -> the metadata dict (title, per-table sort, facets, column descriptions, canned
queries); SETTINGS -> Datasette settings. Canned queries are read-only SQL over the index schema
(leaktriage.search.schema); each row links to the message page through its `message` column.
"""
from __future__ import annotations

from leaktriage.search.query import TEXT_SQL

SETTINGS = {
    "default_page_size": 50,
    "max_returned_rows": 1000,
    "sql_time_limit_ms": 5000,
    "facet_time_limit_ms": 2000,
    "default_facet_size": 12,
    "suggest_facets": False,
    "truncate_cells_html": 160,      # bodies and attachment text do not make a row a screen tall
    "allow_download": False,         # the index holds the whole text of the leak: no one-click copy
}


def _disguised() -> str:
    from leaktriage.search.query import disguised_sql
    return disguised_sql("a.")


def queries() -> dict:
    return {
        "disguised_executables": {
            "title": "Disguised executables",
            "description": "Attachments that can run code (executables, scripts, macro documents) whose name or "
                           "declared type says something else, e.g. a Windows program named Facture.pdf.",
            "sql": "SELECT a.message_id AS message, m.date, m.custodian, m.subject, a.filename, a.risk, "
                   "a.magic AS detected_type, a.content_type AS declared_type, a.locator FROM attachments a "
                   "JOIN messages m ON m.id = a.message_id WHERE %s ORDER BY m.date, a.id" % _disguised(),
        },
        "dangerous_attachments": {
            "title": "Every executable, script and macro document",
            "description": "By content, whatever the name says.",
            "sql": "SELECT a.message_id AS message, m.date, m.custodian, m.subject, a.filename, a.risk, "
                   "a.magic AS detected_type, a.locator FROM attachments a JOIN messages m ON m.id = a.message_id "
                   "WHERE a.risk IS NOT NULL ORDER BY a.risk, m.date, a.id",
        },
        "body_hash_mismatches": {
            "title": "DKIM body-hash mismatches: bodies changed after signing",
            "description": "Signatures whose body hash no longer matches: the text or an attachment was changed "
                           "after the message was signed (dump artefacts such as mbox quoting are undone first).",
            "sql": "SELECT f.message_id AS message, m.date, m.custodian, m.subject, m.from_text, f.domain, "
                   "f.selector, f.explanation FROM findings f JOIN messages m ON m.id = f.message_id "
                   "WHERE f.kind = 'dkim' AND f.code = 'body-hash-mismatch' ORDER BY m.date, f.id",
        },
        "documents_modified_after_sending": {
            "title": "Documents modified after the message carrying them was sent",
            "description": "An attached document whose own metadata says it was modified after the message "
                           "was sent (auth.doc_modified_after_sent), and batches of old documents modified "
                           "together.",
            "sql": "SELECT f.message_id AS message, m.date, m.custodian, m.subject, f.code, f.explanation, "
                   "f.detail FROM findings f JOIN messages m ON m.id = f.message_id WHERE f.code IN "
                   "('auth.doc_modified_after_sent', 'auth.doc_batch_modified', 'auth.mailbox_docs_batch_modified') "
                   "ORDER BY m.date, f.id",
        },
        "scans_needing_ocr": {
            "title": "Scanned documents: no text layer (need OCR)",
            "sql": "SELECT a.message_id AS message, m.date, m.custodian, m.subject, a.filename, a.type, "
                   "a.text_status, a.text_codes, a.locator FROM attachments a JOIN messages m ON m.id = a.message_id "
                   "WHERE %s ORDER BY m.date, a.id" % TEXT_SQL["scan"],
        },
        "private_mail": {
            "title": "Private mail (sphere personal)",
            "description": "Messages leaktriage classified as personal mail, with the confidence, sensitive topics "
                           "and kinds of personal data; the reasons are on the privacy table (docs/privacy.md).",
            "sql": "SELECT p.message_id AS message, m.date, m.custodian, m.subject, p.confidence, p.sensitive, "
                   "p.pii_kinds FROM privacy p JOIN messages m ON m.id = p.message_id WHERE p.sphere = 'personal' "
                   "ORDER BY m.date, m.id",
        },
        "personal_data_in_work_mail": {
            "title": "Personal data in work mail",
            "description": "Bank accounts, social security and card numbers, phones, dates of birth, addresses, "
                           "passports and personal e-mail addresses found in messages classified as work.",
            "sql": "SELECT x.message_id AS message, m.date, m.custodian, m.subject, x.kind, x.value, x.part, x.rule "
                   "FROM pii x JOIN privacy p ON p.message_id = x.message_id JOIN messages m ON m.id = x.message_id "
                   "WHERE p.sphere = 'work' ORDER BY m.date, x.id",
        },
        "contradicting_copies": {
            "title": "Copies of one email that contradict each other",
            "description": "Emails stored more than once whose copies differ (copy.contradiction): one copy was "
                           "altered after it was sent. Each copy is a row, with the parts that differ and its "
                           "variant; see docs/conversations.md.",
            "sql": "SELECT c.message_id AS message, c.copy_group, c.variant, m.date, m.custodian, m.subject, "
                   "g.differing_parts, m.dkim, m.locator FROM copy_groups g JOIN message_copies c ON "
                   "c.copy_group = g.id JOIN messages m ON m.id = c.message_id WHERE g.verdict = 'contradiction' "
                   "ORDER BY g.id, c.variant, m.locator",
        },
        "text_extraction_problems": {
            "title": "Attachments whose text could not be read",
            "description": "Encrypted, damaged or too large documents, timeouts: their words are not searchable.",
            "sql": "SELECT p.message_id AS message, p.code, p.severity, p.description, p.locator FROM problems p "
                   "WHERE p.origin = 'index' AND p.code LIKE 'text.%' ORDER BY p.code, p.id",
        },
    }


def metadata(db_name: str) -> dict:
    tables = {
        "inbox": {
            "title": "Emails",
            "description": "One row per email, newest first: the copies of an email held in several mailboxes "
                           "are one row (copies, custodians). Search with leaktriage's query language; open a "
                           "subject to read the message.",
            "sort_desc": "date",
            "facets": ["month", "dkim", {"array": "custodians"}, {"array": "attachment_types"}, "risk"],
            "size": 50,
        },
        "messages": {
            "title": "Every stored message (each copy a row)",
            "sort_desc": "date",
            "facets": ["custodian", "month", "dkim"],
            "label_column": "subject",
        },
        "attachments": {"facets": ["type", "risk", "text_status"], "label_column": "filename"},
        "problems": {"facets": ["code", "origin", "severity"]},
        "findings": {"facets": ["kind", "code"]},
        "emails": {"hidden": True},
        "meta": {"hidden": True},
        "addresses": {"facets": ["role", "domain"]},
        "privacy": {"title": "Private sphere of each message (work, personal)", "sort_desc": "p_personal",
                    "facets": ["sphere", {"array": "sensitive"}, {"array": "pii_kinds"}]},
        "pii": {"title": "Personal data found (validated)", "facets": ["kind", "rule", "part"]},
        "topics": {"title": "Sensitive-topic words", "facets": ["category", "language"]},
        "email_mentions": {"hidden": True},
        "threads": {"sort_desc": "first_date", "label_column": "subject"},
        "copy_groups": {"facets": ["verdict", "differing_parts"]},
        "near_duplicate_groups": {"facets": ["kind"]},
        "persons": {"label_column": "label", "sort_desc": "sent"},
        "person_edges": {"sort_desc": "weight"},
        "document_texts": {"hidden": True},
        "thread_gaps": {"hidden": True},
    }
    return {
        "title": "leaktriage",
        "description": "The leak, browsable: start with the emails, search them, open one to read it.",
        "license": None,
        "databases": {db_name: {"tables": tables, "queries": queries()}},
        "plugins": {},
    }
