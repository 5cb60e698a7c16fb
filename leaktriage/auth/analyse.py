"""One call per message: DKIM, ARC, Received chain, hidden timestamps and their indicators."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from leaktriage.auth.codes import indicator
from leaktriage.auth.coverage import coverage_indicators
from leaktriage.auth.dkimverify import verify_arc, verify_dkim
from leaktriage.auth.documents import document_indicators
from leaktriage.auth.keystore import KeyStore
from leaktriage.auth.received import parse_date, parse_received_chain, receipt_time, received_indicators
from leaktriage.auth.timestamps import hidden_timestamps, timestamp_indicators

_FAIL = ("body-hash-mismatch", "signature-mismatch")
_VERDICT_CODES = {
    "body-hash-mismatch": "auth.dkim_body_hash_mismatch",
    "signature-mismatch": "auth.dkim_signature_mismatch",
    "pass-weak-key": "auth.dkim_weak_key",
    "expired": "auth.dkim_expired",
    "no-key": "auth.dkim_no_key",
    "malformed": "auth.dkim_malformed",
    "unsupported-algorithm": "auth.dkim_unsupported_algorithm",
}


def dkim_summary(sigs: Sequence[Dict[str, Any]]) -> str:
    """One word per message: "none" (unsigned), "pass" (some signature passes with a key of at
    least 1024 bits), "pass-weak-key", "fail" (some signature body-hash- or signature-mismatch and
    none passes), "expired", "no-key" (no key for any signature), "unverifiable" (only malformed
    or unsupported signatures)."""
    v = [s.get("verdict") for s in sigs]
    if not v:
        return "none"
    for word in ("pass", "pass-weak-key"):
        if word in v:
            return word
    if any(x in _FAIL for x in v):
        return "fail"
    if "expired" in v:
        return "expired"
    if "no-key" in v:
        return "no-key"
    return "unverifiable"


def _internal(where: str, e: Exception) -> Dict[str, Any]:
    return indicator("auth.internal_error", {"where": where, "error": "%s: %s" % (type(e).__name__, e)},
                     "An authenticity check stopped on an unexpected error; the others still ran.")


def analyse_message(raw: bytes, headers: Sequence[Tuple[str, str]], *,
                    keystore: Optional[KeyStore] = None, dns: bool = False,
                    docs: Optional[List[Dict[str, Any]]] = None, eol: Optional[str] = None
                    ) -> Dict[str, Any]:
    """Everything the authenticity stage says about one message. Never raises.

    raw: the message bytes as found (container mbox quoting undone); headers: (name, decoded
    value) in order; keystore: offline keys (None = no keys); dns: allow live DNS for keys missing
    from the key store; docs: docmeta() results of the message's attachments (optional); eol: the
    line-ending census of raw when the caller has it (saves two passes over a CRLF message).
    """
    result: Dict[str, Any] = {"dkim": [], "arc": {"verdict": "none", "sets": [], "reason": ""},
                              "received": [], "hidden_timestamps": [], "indicators": [],
                              "dkim_summary": "none", "artefacts": [], "received_at": None}
    ind: List[Dict[str, Any]] = result["indicators"]
    headers = [(str(n), "" if v is None else str(v)) for n, v in (headers or [])]
    try:
        result["received"] = parse_received_chain(headers)
        rcv = receipt_time(result["received"])
        result["received_at"] = rcv.isoformat().replace("+00:00", "Z") if rcv else None
    except Exception as e:
        rcv = None
        ind.append(_internal("received", e))
    try:
        result["dkim"] = verify_dkim(raw, keystore, dns=dns, received_at=rcv, eol=eol)
        result["dkim_summary"] = dkim_summary(result["dkim"])
        arts: List[str] = []
        for sig in result["dkim"]:
            for a in sig.get("artefacts", []):
                if a not in arts:
                    arts.append(a)
            base = {"signature": sig["index"], "d": sig.get("d"), "s": sig.get("s"), "reason": sig.get("reason")}
            code = _VERDICT_CODES.get(sig["verdict"])
            if code:
                ind.append(indicator(code, base, "DKIM signature %d (d=%s): %s." % (sig["index"], sig.get("d"), sig["verdict"])))
            if (sig.get("a") or "").strip().lower() == "rsa-sha1" and sig["verdict"] in ("pass", "pass-weak-key"):
                ind.append(indicator("auth.dkim_sha1", base, "The signature uses rsa-sha1, no longer accepted as proof (RFC 8301)."))
            if sig.get("key_source") == "derived" and sig["verdict"] not in ("no-key", "malformed", "unsupported-algorithm"):
                ind.append(indicator("auth.dkim_derived_key", {**base, "key_provenance": sig.get("key_provenance")},
                                     "The key was derived from the dump itself: this verdict shows the messages are consistent with each other, not who signed them."))
            if sig.get("t") is not None and rcv is not None and sig["t"] > rcv.timestamp() + 600:
                ind.append(indicator("auth.dkim_signed_after_receipt",
                                     {**base, "t": sig["t"], "received_at": result["received_at"]},
                                     "The signature claims to have been made after the message was received."))
        result["artefacts"] = arts
        if any(a for a in arts):
            ind.append(indicator("auth.dump_artefact", {"artefacts": arts},
                                 "Dump artefacts were undone before verifying: " + "; ".join(arts) + "."))
        ind.extend(coverage_indicators(result["dkim"], headers))
    except Exception as e:
        ind.append(_internal("dkim", e))
    try:
        result["arc"] = verify_arc(raw, keystore, dns=dns, eol=eol)
        arc = result["arc"]
        if arc["verdict"] == "fail":
            ind.append(indicator("auth.arc_fail", {"reason": arc["reason"], "sets": arc["sets"]}, "The ARC chain does not verify."))
        elif arc["verdict"] == "malformed":
            ind.append(indicator("auth.arc_malformed", {"reason": arc["reason"]}, "The ARC header fields are incomplete or malformed."))
        if any("ARC header" in a for a in arc.get("artefacts", [])):
            ind.append(indicator("auth.arc_header_repaired", {"artefacts": arc["artefacts"]},
                                 "An ARC header field without a space after its colon was normalised before verifying."))
    except Exception as e:
        ind.append(_internal("arc", e))
    try:
        date_v = next((v for n, v in headers if n.strip().lower() == "date"), None)
        ind.extend(received_indicators(result["received"], date_v))
    except Exception as e:
        ind.append(_internal("received_indicators", e))
    try:
        result["hidden_timestamps"] = hidden_timestamps(headers, rcv)
        ind.extend(timestamp_indicators(headers, result["hidden_timestamps"]))
    except Exception as e:
        ind.append(_internal("timestamps", e))
    if docs:
        try:
            date_v = next((v for n, v in headers if n.strip().lower() == "date"), None)
            ind.extend(document_indicators(parse_date(date_v), docs))
        except Exception as e:
            ind.append(_internal("documents", e))
    return result


def authenticate_record(msg: dict, data: bytes, decoded_values, docs: list, *, keystore: Optional[KeyStore] = None,
                        dns: bool = False) -> None:
    """DKIM/ARC verdicts, the Received chain, hidden timestamps and tampering indicators, written
    into a message record (what the scanner passes to leaktriage.mail.message.analyse as `auth`)."""
    res = analyse_message(data, decoded_values, keystore=keystore, dns=dns, docs=docs or None,
                          eol=msg.get("line_endings"))
    if res.get("dkim"):
        msg["dkim"] = res["dkim"]
        msg["dkim_summary"] = res["dkim_summary"]
    arc = res.get("arc") or {}
    if arc.get("verdict") not in (None, "none"):
        msg["arc"] = arc
    if res.get("received"):
        msg["received"] = res["received"]
        if res.get("received_at"):
            msg["received_at"] = res["received_at"]
    if res.get("hidden_timestamps"):
        msg["hidden_timestamps"] = res["hidden_timestamps"]
    if res.get("indicators"):
        msg["indicators"] = res["indicators"]
