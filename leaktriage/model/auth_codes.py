"""Indicator codes of the authenticity stage (same format as leaktriage.model.problems).

CODES maps code -> (severity, stage, description). Every indicator produced by leaktriage.auth is a
dict ``{"code", "severity", "evidence", "explanation"}`` whose code is listed here;
docs/authenticity.md explains what each one means and what it does not prove.
"""
from __future__ import annotations

from typing import Dict, Tuple

STAGE = "auth"

CODES: Dict[str, Tuple[str, str, str]] = {
    # DKIM verdicts that deserve an indicator of their own
    "auth.dkim_body_hash_mismatch": ("error", STAGE, "A DKIM signature's body hash does not match the body: the body was changed after signing (or a dump artefact that could not be undone)."),
    "auth.dkim_signature_mismatch": ("error", STAGE, "A DKIM signature does not verify over the signed header fields: a signed header was changed after signing, or the key is not the signing key."),
    "auth.dkim_weak_key": ("warning", STAGE, "A DKIM signature verifies with an RSA key under 1024 bits: such keys can be factored, so the signature is not probative."),
    "auth.dkim_expired": ("warning", STAGE, "A DKIM signature's x= expiry lies before the time the message was received (judged against the message's own Received time, never today)."),
    "auth.dkim_no_key": ("info", STAGE, "No public key was available for a DKIM signature (not in the key store, live DNS not used or empty): nothing is proven either way."),
    "auth.dkim_malformed": ("warning", STAGE, "A DKIM-Signature header field could not be used (bad tag list, missing or invalid tag)."),
    "auth.dkim_unsupported_algorithm": ("info", STAGE, "A DKIM signature uses an algorithm or canonicalisation that is not supported."),
    "auth.dkim_sha1": ("info", STAGE, "A DKIM signature uses rsa-sha1, which RFC 8301 no longer accepts as proof."),
    "auth.dkim_signed_after_receipt": ("warning", STAGE, "A DKIM signature's t= signing time lies after the time the message was received."),
    "auth.dkim_derived_key": ("info", STAGE, "A DKIM verdict was reached with a key derived from the dump itself: it proves consistency between messages, not who signed them."),
    # what DKIM does not cover
    "auth.dkim_body_length_limit": ("warning", STAGE, "A DKIM signature has l= and the body holds content beyond the signed length: that content is not covered by the signature."),
    "auth.dkim_from_not_signed": ("error", STAGE, "A DKIM signature's h= does not list From: it says nothing about the author (RFC 6376 makes such a signature invalid)."),
    "auth.dkim_singleton_repeated": ("warning", STAGE, "A header that must appear once (From, To, Cc, Subject, Date, Message-ID, Content-Type) appears more often than the signature covers: an unsigned copy may have been added and may be what a mail program shows."),
    "auth.dkim_singleton_unsigned": ("info", STAGE, "A header that must appear once is present but not covered by the signature: it could have been changed without breaking it."),
    "auth.dkim_not_aligned": ("info", STAGE, "The signing domain d= is not aligned with the From domain (different organisational domains): the signature vouches for the signer, not the author's domain."),
    "auth.dump_artefact": ("info", STAGE, "A dump artefact (LF-only or CR-only line endings, mbox '>From ' quoting) was undone before verifying."),
    # ARC
    "auth.arc_fail": ("warning", STAGE, "The ARC chain does not verify."),
    "auth.arc_malformed": ("warning", STAGE, "The ARC header fields are incomplete or malformed."),
    "auth.arc_header_repaired": ("info", STAGE, "An ARC header field written without a space after the colon was normalised before verifying (a known dkimpy fault, harmless under relaxed canonicalisation)."),
    # Received chain
    "auth.received_out_of_order": ("warning", STAGE, "A Received hop is dated later than the hop that received the message after it (beyond the clock-skew allowance)."),
    "auth.received_long_delay": ("warning", STAGE, "More than 7 days between two consecutive Received hops."),
    "auth.received_date_invalid": ("info", STAGE, "A Received header has no parseable date."),
    "auth.date_far_from_first_hop": ("warning", STAGE, "The Date header is far from the date of the first Received hop."),
    # hidden timestamps and client fingerprints
    "auth.hidden_time_after_date": ("warning", STAGE, "A hidden timestamp (Gmail MIME boundary, X-Received, Outlook Thread-Index) is later than the Date header beyond the allowance: the Date may have been set back."),
    "auth.hidden_time_implausible": ("info", STAGE, "A hidden timestamp decodes to a time that cannot be true (an Outlook Thread-Index whose conversation start is outside 1996-2053, or a time more than a day after the message was received): it is kept in hidden_timestamps with the reason and never compared with the Date."),
    "auth.hidden_time_before_date": ("info", STAGE, "A hidden timestamp is earlier than the Date header beyond the allowance (a draft composed long before sending, or a Date set forward)."),
    "auth.message_id_agent_mismatch": ("warning", STAGE, "The Message-ID style belongs to one mail program and X-Mailer/User-Agent names another."),
    # attachment metadata
    "auth.doc_modified_after_sent": ("warning", STAGE, "An attached document's metadata says it was modified after the carrying message was sent."),
    "auth.doc_batch_modified": ("warning", STAGE, "Several old documents were all modified within minutes of each other."),
    "auth.doc_author_foreign_script": ("info", STAGE, "A document author or editor name is written in a script that no name of the custodian's mailbox uses (custodian, subjects, correspondents; judged over the whole mailbox, reported in its mailbox record)."),
    "auth.mailbox_docs_batch_modified": ("warning", STAGE, "Several old documents attached to different messages of one mailbox were all modified within minutes of each other (reported in the mailbox record)."),
    # internal
    "auth.internal_error": ("error", STAGE, "An unexpected error inside the authenticity checks; the rest of the message record is unaffected. Please report it."),
}
