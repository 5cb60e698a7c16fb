"""Authenticity checks for leaked mail: offline DKIM/ARC verification with a key store, key
recovery from the dump itself, and tampering/forgery indicators. See docs/authenticity.md.

Pure functions, no global state; none of them raises on hostile input (KeyStore.load raises
KeyStoreError on a bad key store file, which is the caller's input, not the dump's).
"""
import importlib

from leaktriage.auth.documents import document_indicators, script_of  # light (stdlib only)

# Loaded on first use: importing leaktriage.auth.codes (the problem-code table) must not pull in
# dkimpy and dnspython, which cost ~200 ms of start-up for commands that never verify anything.
_WHERE = {
    "analyse_message": "analyse", "dkim_summary": "analyse", "CODES": "codes",
    "coverage_indicators": "coverage", "org_domain": "coverage", "VERDICTS": "dkimverify",
    "verify_arc": "dkimverify", "verify_dkim": "dkimverify", "recover_keys": "keyrecover",
    "write_keystore": "keyrecover", "DERIVED": "keystore", "KeyStore": "keystore",
    "KeyStoreError": "keystore", "parse_received": "received", "parse_received_chain": "received",
    "received_indicators": "received", "hidden_timestamps": "timestamps", "timestamp_indicators": "timestamps",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module("." + _WHERE[name], __name__), name)
    raise AttributeError(name)


__all__ = ["analyse_message", "dkim_summary", "CODES", "coverage_indicators", "org_domain", "VERDICTS",
           "verify_arc", "verify_dkim", "document_indicators", "script_of", "recover_keys",
           "write_keystore", "DERIVED", "KeyStore", "KeyStoreError", "parse_received",
           "parse_received_chain", "received_indicators", "hidden_timestamps", "timestamp_indicators"]
