"""DKIM and ARC verification with an offline key store; one verdict per signature, never a bool.

DKIM is verified here step by step (tag checks, key, body hash, header signature) with dkimpy's
tag parser and key parser, so that a changed body (body-hash-mismatch) is told apart from changed
headers or a wrong key (signature-mismatch), and expiry is judged against the message's own receipt
time instead of today (dkimpy rejects every x= in the past and every t= in the future of *now*).
ARC is verified with dkimpy's ARC engine behind a key-store lookup function, with its known
faults handled (see verify_arc).

mbox '>From ' quoting: the caller passes the message with the mbox quoting of its container
undone. If a body hash still fails and the body has '>From ' lines, one level of quoting is undone
as a second attempt and the artefact is reported.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from leaktriage.auth import canonical as M
from leaktriage.auth.keystore import KeyStore

try:  # dkimpy is the engine for tag and key parsing and for ARC
    import dkim
    from dkim.util import parse_tag_value, InvalidTagValueList
    from dkim.crypto import parse_public_key
except Exception:  # pragma: no cover - dkimpy is a hard dependency
    dkim = None

VERDICTS = ("pass", "pass-weak-key", "body-hash-mismatch", "signature-mismatch", "no-key",
            "expired", "malformed", "unsupported-algorithm")

ALGORITHM_HASHES = {"rsa-sha256": "sha256", "rsa-sha1": "sha1", "ed25519-sha256": "sha256"}
_DIGESTINFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
}
_B64 = re.compile(rb"^[A-Za-z0-9+/]*={0,2}$")


# --- helpers -----------------------------------------------------------------------------------

def _s(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8", "replace")


def strict_b64decode(v: bytes) -> Optional[bytes]:
    v = re.sub(rb"\s+", b"", v)
    if not _B64.match(v) or len(v) % 4:
        return None
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None


def emsa_pkcs1_v15(digest: bytes, hashname: str, k: int) -> Optional[bytes]:
    """EMSA-PKCS1-v1_5 encoding of a digest for a k-byte modulus (None if it does not fit)."""
    t = _DIGESTINFO[hashname] + digest
    if k < len(t) + 11:
        return None
    return b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def rsa_verify(digest: bytes, hashname: str, sig: bytes, n: int, e: int) -> bool:
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(sig, "big")
    if len(sig) > k or s >= n:
        return False
    em = emsa_pkcs1_v15(digest, hashname, k)
    if em is None:
        return False
    return pow(s, e, n).to_bytes(k, "big") == em


def to_utc(dt: Optional[datetime]) -> Optional[datetime]:
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def signed_header_data(headers: List[M.Header], sig_header: M.Header, hnames: List[str],
                       header_alg: str) -> bytes:
    """The exact bytes hashed for the header signature: the selected header fields canonicalised,
    then the signature field itself with b= emptied and no final CRLF."""
    parts = [M.canon_header(h, header_alg) for h in M.select_headers(headers, hnames)]
    own = M.canon_header((sig_header[0], M.strip_b_tag(sig_header[1])), header_alg)
    if own.endswith(b"\r\n"):
        own = own[:-2]
    parts.append(own)
    return b"".join(parts)


def parse_key_record(txt: Any) -> Dict[str, Any]:
    """Parse a DKIM key TXT record: {"k", "key", "bits", "h", "s", "error"}."""
    out: Dict[str, Any] = {"k": None, "key": None, "bits": None, "h": None, "error": None}
    try:
        raw = txt.encode("utf-8") if isinstance(txt, str) else bytes(txt)
        tags = parse_tag_value(raw)
    except Exception as e:
        out["error"] = "key record is not a tag list (%s)" % e
        return out
    if b"v" in tags and tags[b"v"] != b"DKIM1":
        out["error"] = "key record v= is not DKIM1"
        return out
    k = (tags.get(b"k") or b"rsa").decode("ascii", "replace").lower()
    out["k"] = k
    if b"h" in tags:
        out["h"] = [x.strip().lower() for x in tags[b"h"].decode("ascii", "replace").split(":")]
    if b"s" in tags:
        svc = [x.strip() for x in tags[b"s"].decode("ascii", "replace").split(":")]
        if "*" not in svc and "email" not in svc:
            out["error"] = "key record service type s=%s is not email" % ":".join(svc)
            return out
    p = tags.get(b"p")
    if p is None:
        out["error"] = "key record has no p= tag"
        return out
    if re.sub(rb"\s+", b"", p) == b"":
        out["error"] = "key revoked (empty p=)"
        return out
    pb = strict_b64decode(p)
    if pb is None:
        out["error"] = "key record p= is not base64"
        return out
    if k == "rsa":
        try:
            pk = parse_public_key(pb)
            n, e = int(pk["modulus"]), int(pk["publicExponent"])
        except Exception as ex:
            out["error"] = "RSA public key cannot be parsed (%s)" % ex
            return out
        if n <= 0 or e <= 0:
            out["error"] = "RSA public key is invalid"
            return out
        out["key"] = (n, e)
        out["bits"] = n.bit_length()
    elif k == "ed25519":
        if len(pb) != 32:
            out["error"] = "ed25519 public key is not 32 bytes"
            return out
        out["key"] = pb
        out["bits"] = 256
    else:
        out["error"] = "unknown key type k=%s" % k
    return out


def _dns_txt(name: str) -> Optional[str]:
    """Live DNS lookup through dkimpy (only ever called when the caller passed dns=True)."""
    try:
        from dkim.dnsplug import get_txt
        r = get_txt(name.rstrip(".").encode("ascii") + b".", timeout=5)
    except Exception:
        return None
    if r is None:
        return None
    return r.decode("utf-8", "replace") if isinstance(r, bytes) else str(r)


def find_key(name: str, keystore: Optional[KeyStore], dns: bool
             ) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(txt, key_source, provenance) or (None, None, None)."""
    if keystore is not None:
        try:
            hit = keystore.lookup(name)
        except Exception:
            hit = None
        if hit is not None:
            txt, prov = hit
            if prov and prov.strip().lower().startswith("derived"):
                return txt, "derived", prov
            # the key store's content digest, not its path: the manifest stays byte-identical on any
            # machine (the path goes to the run record)
            return txt, "keystore:sha256:%s" % keystore.digest[:16], prov
    if dns:
        txt = _dns_txt(name)
        if txt is not None:
            return txt, "dns", "live DNS at verification time (not at sending time)"
    return None, None, None


def _has_header(raw: Any, name: bytes) -> bool:
    """Cheap pre-check on the header block only (messages without signatures cost nothing): does a
    line start with the field `name` (lower case; a name ending in '-' stands for any field that
    starts with it) followed by optional blanks and a colon? Bytes searches, no regex."""
    try:
        raw = bytes(raw or b"")
    except Exception:
        return True
    if b"\n" in raw[:65536]:
        from leaktriage.mail.headers import find_header_end  # windowed search: a big body is not scanned
        head = raw[:find_header_end(raw, 0, len(raw))[0]]
    else:
        i = raw.find(b"\r\r")
        head = raw[:i] if i >= 0 else raw
    low = head.lower()
    n = len(low)
    i = low.find(name)
    while i >= 0:
        if i == 0 or low[i - 1] in (10, 13):
            j = i + len(name)
            if name.endswith(b"-"):
                k = j
                while k < n and (97 <= low[k] <= 122 or low[k] == 45):
                    k += 1
                j = k if k > j else n     # at least one more name character
            while j < n and low[j] in (32, 9):
                j += 1
            if low[j:j + 1] == b":":
                return True
        i = low.find(name, i + 1)
    return False


# --- DKIM ----------------------------------------------------------------------------------------

def _empty_result(index: int, artefacts: List[str]) -> Dict[str, Any]:
    return {"index": index, "verdict": None, "d": None, "s": None, "a": None, "c": None, "h": [],
            "l": None, "t": None, "x": None, "i": None, "bh": None, "key_bits": None,
            "key_source": None, "key_provenance": None, "reason": "",
            "header_signature": None, "body_hash": None, "expired_at_receipt": None,
            "body_length": None, "unsigned_body_bytes": None, "artefacts": list(artefacts)}


def _int_tag(tags: Dict[bytes, bytes], k: bytes, res: Dict[str, Any], maxlen: int = 76
             ) -> Tuple[Optional[int], Optional[str]]:
    if k not in tags:
        return None, None
    v = re.sub(rb"\s+", b"", tags[k])
    if not v.isdigit() or len(v) > maxlen:
        return None, "%s= is not a decimal integer (%s)" % (k.decode(), _s(tags[k]))
    return int(v), None


def _verify_one(index: int, sig_header: M.Header, headers: List[M.Header], body: bytes,
                keystore: Optional[KeyStore], dns: bool, received_at: Optional[datetime],
                artefacts: List[str]) -> Dict[str, Any]:
    res = _empty_result(index, artefacts)

    def done(verdict: str, reason: str) -> Dict[str, Any]:
        res["verdict"] = verdict
        res["reason"] = reason
        return res

    value = sig_header[1].replace(b"\r\n", b"")
    try:
        tags = parse_tag_value(value)
    except InvalidTagValueList as e:
        return done("malformed", "tag list cannot be parsed (%s)" % (_s(e.args[0]) if e.args and isinstance(e.args[0], bytes) else e))
    except Exception as e:
        return done("malformed", "tag list cannot be parsed (%s)" % e)

    for k in ("d", "s", "a", "c", "i", "bh"):
        if k.encode() in tags:
            res[k] = _s(tags[k.encode()])
    if res["d"]:
        res["d"] = res["d"].lower()
    if b"h" in tags:
        res["h"] = [x.strip().lower() for x in _s(tags[b"h"]).split(":") if x.strip()]
    ints = {}
    for k in (b"l", b"t", b"x"):
        v, err = _int_tag(tags, k, res)
        if err:
            return done("malformed", err)
        ints[k] = v
        res[k.decode()] = v

    missing = [k for k in ("v", "a", "b", "bh", "d", "h", "s") if k.encode() not in tags]
    if missing:
        return done("malformed", "missing required tag(s): %s" % ", ".join(m + "=" for m in missing))
    if tags[b"v"].strip() != b"1":
        return done("malformed", "v= is not 1 (%s)" % _s(tags[b"v"]))
    sig_bytes = strict_b64decode(tags[b"b"])
    bh_bytes = strict_b64decode(tags[b"bh"])
    if not sig_bytes:
        return done("malformed", "b= is not valid base64")
    if bh_bytes is None:
        return done("malformed", "bh= is not valid base64")
    d = res["d"] or ""
    if not d or re.search(r"[\s()<>\[\]:;@\\,]", d):
        return done("malformed", "d= is not a domain name (%s)" % d)
    if res["i"] is not None:
        idom = res["i"].rsplit("@", 1)[-1].lower()
        if not (idom == d or idom.endswith("." + d)):
            return done("malformed", "i= domain %s is not d= %s or a subdomain of it" % (idom, d))
    if not res["h"]:
        return done("malformed", "h= is empty")
    if ints[b"x"] is not None and ints[b"t"] is not None and ints[b"x"] < ints[b"t"]:
        return done("malformed", "x= (%d) is earlier than t= (%d)" % (ints[b"x"], ints[b"t"]))
    if "from" not in res["h"]:
        return done("malformed", "h= does not list From: RFC 6376 6.1.1 makes this signature invalid")

    a = (res["a"] or "").strip().lower()
    if a not in ALGORITHM_HASHES:
        return done("unsupported-algorithm", "signature algorithm a=%s is not supported" % res["a"])
    c = (res["c"] or "simple/simple").strip().lower()
    parts = c.split("/")
    if len(parts) == 1:
        parts.append("simple")
    if len(parts) != 2 or not all(parts):
        return done("malformed", "c= is not a canonicalisation pair (%s)" % res["c"])
    if any(p not in ("simple", "relaxed") for p in parts):
        return done("unsupported-algorithm", "canonicalisation c=%s is not supported" % res["c"])
    halg, balg = parts
    if b"q" in tags:
        q = [x.strip().lower() for x in _s(tags[b"q"]).split(":")]
        if not any(x in ("dns/txt", "dns") for x in q):
            return done("unsupported-algorithm", "key query method q=%s is not supported" % _s(tags[b"q"]))

    # key
    name = "%s._domainkey.%s" % (_s(tags[b"s"]).strip(), d)
    txt, source, prov = find_key(name, keystore, dns)
    if txt is None:
        why = "no key for %s in the key store" % name
        if not dns:
            why += " (live DNS not used)"
        return done("no-key", why)
    res["key_source"], res["key_provenance"] = source, prov
    key = parse_key_record(txt)
    if key["error"]:
        return done("no-key", "key for %s unusable: %s" % (name, key["error"]))
    res["key_bits"] = key["bits"]
    if key["k"] != a.split("-")[0]:
        return done("no-key", "key for %s is k=%s, the signature is a=%s" % (name, key["k"], a))
    hashname = ALGORITHM_HASHES[a]
    if key["h"] is not None and hashname not in key["h"]:
        return done("unsupported-algorithm", "key record h=%s does not allow %s" % (":".join(key["h"]), hashname))

    # body hash
    hasher = getattr(hashlib, hashname)
    cbody = M.canon_body(body, balg)
    res["body_length"] = len(cbody)
    body_ok = False
    body_reason = ""
    l = ints[b"l"]

    def body_matches(cb: bytes) -> Tuple[bool, str]:
        if l is not None and l > len(cb):
            return False, "l=%d is longer than the canonical body (%d bytes): the body was shortened" % (l, len(cb))
        part = cb if l is None else cb[:l]
        return hasher(part).digest() == bh_bytes, ""

    body_ok, body_reason = body_matches(cbody)
    if not body_ok and re.search(rb"(?m)^>+From ", body):
        cb2 = M.canon_body(M.unquote_mbox_from(body), balg)
        ok2, _ = body_matches(cb2)
        if ok2:
            body_ok, cbody = True, cb2
            res["artefacts"].append(M.ART_FROM_QUOTE)
            res["body_length"] = len(cbody)
    if l is not None:
        res["unsigned_body_bytes"] = max(0, len(cbody) - l)
    res["body_hash"] = "match" if body_ok else "mismatch"

    # header signature
    data = signed_header_data(headers, sig_header, res["h"], halg)
    digest = hasher(data).digest()
    if key["k"] == "rsa":
        n, e = key["key"]
        hdr_ok = rsa_verify(digest, hashname, sig_bytes, n, e)
    else:
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            Ed25519PublicKey.from_public_bytes(key["key"]).verify(sig_bytes, digest)
            hdr_ok = True
        except Exception:
            hdr_ok = False
    res["header_signature"] = "valid" if hdr_ok else "invalid"

    rcv = to_utc(received_at)
    if ints[b"x"] is not None and rcv is not None:
        res["expired_at_receipt"] = ints[b"x"] < int(rcv.timestamp())

    if not body_ok:
        extra = (" The signed header fields (and the bh= value) do verify with the key, so only the body differs."
                 if hdr_ok else " The header signature does not verify either.")
        return done("body-hash-mismatch", (body_reason or "the body hash differs from bh=: the body was changed after signing") + "." + extra)
    if not hdr_ok:
        return done("signature-mismatch", "the body hash matches but the signature over the signed header fields does not verify: a signed header was changed or the key is not the signing key")
    if res["expired_at_receipt"]:
        return done("expired", "signature verifies but x=%d (%s) is before the message was received (%s)"
                    % (ints[b"x"], datetime.fromtimestamp(ints[b"x"], timezone.utc).isoformat(), rcv.isoformat()))
    note = ""
    if ints[b"x"] is not None and rcv is None:
        note = " (x= present; no receipt time known, so expiry was not judged)"
    if key["k"] == "rsa" and key["bits"] < 1024:
        return done("pass-weak-key", "signature verifies, but with a %d-bit RSA key (under 1024 bits: not probative)%s" % (key["bits"], note))
    return done("pass", "signature verifies" + note)


def verify_dkim(raw: bytes, keystore: Optional[KeyStore] = None, *, dns: bool = False,
                received_at: Optional[datetime] = None, eol: Optional[str] = None) -> List[Dict[str, Any]]:
    """Verify every DKIM-Signature of a message (top to bottom); one result dict per signature.

    ``raw`` is the message as found (any line endings, mbox quoting of the container undone).
    ``received_at`` is the message's own receipt time (its top Received date); x= expiry is judged
    against it, never against today. ``eol``: the line-ending census of ``raw`` when known.
    Never raises.
    """
    if not _has_header(raw, b"dkim-signature"):
        return []
    try:
        data, arts = M.normalise_line_endings(bytes(raw or b""), eol)
        headers, body, notes = M.split_message(data)
        arts = arts + notes
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
            arts.append("missing final line break restored (SMTP data always ends with CRLF)")
    except Exception as e:  # pragma: no cover - defensive
        return [{**_empty_result(0, []), "verdict": "malformed", "reason": "message cannot be split: %s" % e}]
    out = []
    for idx, h in enumerate([h for h in headers if M.header_name(h) == "dkim-signature"]):
        try:
            out.append(_verify_one(idx, h, headers, body, keystore, dns, received_at, arts))
        except Exception as e:  # never raise on hostile input
            r = _empty_result(idx, arts)
            r.update(verdict="malformed", reason="could not be verified: %s: %s" % (type(e).__name__, e))
            out.append(r)
    return out


# --- ARC -----------------------------------------------------------------------------------------

_ARC_NAMES = ("arc-seal", "arc-message-signature", "arc-authentication-results")
_INSTANCE = re.compile(rb"(?:^|;)\s*i\s*=\s*(\d+)\s*(?:;|$)")


def verify_arc(raw: bytes, keystore: Optional[KeyStore] = None, *, dns: bool = False,
               eol: Optional[str] = None) -> Dict[str, Any]:
    """Verify the ARC chain: {"verdict", "sets": [{"i", "ams", "as", "cv", ...}], "reason",
    "artefacts", "missing_keys"}.

    verdict: "none" (no ARC headers), "pass", "fail", "no-key" (a key needed is not available: not
    a failure), "malformed" (incomplete or duplicated sets, bad instance numbers). Per set, "ams"
    and "as" are "pass", "fail" or "no-key". dkimpy faults handled: a header written ``Name:i=1;``
    without a space after the colon crashes dkimpy's AMS lookup, so a space is inserted (harmless
    under the relaxed canonicalisation ARC requires); a missing key makes dkimpy say "fail", which
    is reported as "no-key". Never raises.
    """
    result: Dict[str, Any] = {"verdict": "none", "sets": [], "reason": "", "artefacts": [],
                              "missing_keys": []}
    if not _has_header(raw, b"arc-"):
        result["reason"] = "message is not ARC signed"
        return result
    try:
        data, arts = M.normalise_line_endings(bytes(raw or b""), eol)
        headers, body, notes = M.split_message(data)
        result["artefacts"] = arts + notes
        arc = [(k, h) for k, h in enumerate(headers) if M.header_name(h) in _ARC_NAMES]
        if not arc:
            result["reason"] = "message is not ARC signed"
            return result
        sets: Dict[int, Dict[str, Any]] = {}
        fixed = list(headers)
        for k, h in arc:
            val = h[1]
            if not val[:1] in (b" ", b"\t"):
                fixed[k] = (h[0], b" " + val)
                if "ARC header written without a space after the colon: normalised" not in result["artefacts"]:
                    result["artefacts"].append("ARC header written without a space after the colon: normalised")
            m = _INSTANCE.search(val.replace(b"\r\n", b""))
            if not m:
                result.update(verdict="malformed", reason="%s without a valid i= instance" % _s(h[0]).strip())
                return result
            i = int(m.group(1))
            st = sets.setdefault(i, {})
            nm = M.header_name(h)
            if nm in st:
                result.update(verdict="malformed", reason="duplicate %s for instance %d" % (_s(h[0]).strip(), i))
                return result
            st[nm] = val
        inst = sorted(sets)
        if inst != list(range(1, len(inst) + 1)) or len(inst) > 50:
            result.update(verdict="malformed", reason="ARC instances are not 1..N (found %s)" % inst)
            return result
        missing: List[str] = []
        for i in inst:
            st = sets[i]
            info: Dict[str, Any] = {"i": i, "ams": None, "as": None, "cv": None,
                                    "ams_d": None, "ams_s": None, "as_d": None, "as_s": None}
            if len(st) != 3:
                result.update(verdict="malformed", reason="incomplete ARC set for instance %d" % i)
                result["sets"].append(info)
                return result
            for which, nm in (("ams", "arc-message-signature"), ("as", "arc-seal")):
                try:
                    t = parse_tag_value(st[nm].replace(b"\r\n", b""))
                except Exception:
                    result.update(verdict="malformed", reason="%s i=%d tag list cannot be parsed" % (nm, i))
                    return result
                for tag in ((b"b", b"bh") if which == "ams" else (b"b",)):
                    if tag not in t or not strict_b64decode(t[tag]):
                        result["sets"].append(info)
                        result.update(verdict="malformed", reason="%s i=%d: %s= is missing or not valid base64" % (nm, i, tag.decode()))
                        return result
                info[which + "_d"] = _s(t.get(b"d"))
                info[which + "_s"] = _s(t.get(b"s"))
                if which == "as":
                    info["cv"] = _s(t.get(b"cv"))
                if info[which + "_d"] and info[which + "_s"]:
                    name = "%s._domainkey.%s" % (info[which + "_s"].strip(), info[which + "_d"].strip().lower())
                    if find_key(name, keystore, dns)[0] is None:
                        info[which] = "no-key"
                        if name not in missing:
                            missing.append(name)
            result["sets"].append(info)
        result["missing_keys"] = missing

        rebuilt = b"".join(h[0] + b":" + h[1] for h in fixed) + b"\r\n" + body

        def dnsfunc(name, timeout=5):
            n = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
            txt = find_key(n, keystore, dns)[0]
            return None if txt is None else txt.encode("utf-8")

        cv, rows, reason = dkim.ARC(rebuilt, minkey=512).verify(dnsfunc=dnsfunc)
        by_i = {int(r.get("instance", 0)): r for r in rows}
        for info in result["sets"]:
            r = by_i.get(info["i"])
            for which, key in (("ams", "ams-valid"), ("as", "as-valid")):
                if info[which] == "no-key":
                    continue
                if r is None or key not in r:
                    info[which] = None
                else:
                    info[which] = "pass" if r[key] else "fail"
        reason = reason if isinstance(reason, str) else str(reason)
        if cv == b"pass":
            result.update(verdict="pass", reason="ARC chain verifies")
        elif missing and not any(s["ams"] == "fail" or s["as"] == "fail" for s in result["sets"]):
            result.update(verdict="no-key", reason="key(s) not available: %s; the chain could not be judged (dkimpy alone says: %s)" % (", ".join(missing), reason))
        elif cv is None:
            result.update(verdict="fail", reason=reason)
        else:
            result.update(verdict="fail", reason=reason + (" (keys missing: %s)" % ", ".join(missing) if missing else ""))
        return result
    except Exception as e:
        result.update(verdict="malformed", reason="ARC could not be verified: %s: %s" % (type(e).__name__, e))
        return result
