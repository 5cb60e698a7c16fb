"""Authenticity checks for leaked mail: offline DKIM/ARC verification with a key store, key
recovery from the dump itself, and tampering/forgery indicators. See docs/authenticity.md.

Pure functions, no global state; none of them raises on hostile input (KeyStore.load raises
KeyStoreError on a bad key store file, which is the caller's input, not the dump's).
"""
from .analyse import analyse_message, dkim_summary
from .codes import CODES
from .coverage import coverage_indicators, org_domain
from .dkimverify import VERDICTS, verify_arc, verify_dkim
from .docmeta import docmeta, document_indicators, script_of
from .keyrecover import recover_keys, write_keystore
from .keystore import DERIVED, KeyStore, KeyStoreError
from .received import parse_received, parse_received_chain, received_indicators
from .timestamps import hidden_timestamps, timestamp_indicators

__all__ = ["analyse_message", "dkim_summary", "CODES", "coverage_indicators", "org_domain", "VERDICTS",
           "verify_arc", "verify_dkim", "docmeta", "document_indicators", "script_of", "recover_keys",
           "write_keystore", "DERIVED", "KeyStore", "KeyStoreError", "parse_received",
           "parse_received_chain", "received_indicators", "hidden_timestamps", "timestamp_indicators"]
