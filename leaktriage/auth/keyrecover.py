"""Recover DKIM RSA public keys from the dump itself.

Two RSA PKCS#1 v1.5 signatures s1, s2 made with the same key (n, e) over encoded digests m1, m2
satisfy s_i^e = m_i (mod n), so n divides gcd(s1^e - m1, s2^e - m2). The gcd is n times a small
cofactor, which trial division removes; the result is accepted only if it is at least 512 bits and
verifies every signature used. m_i is the EMSA-PKCS1-v1_5 encoding of the hash of the
canonicalised signed header fields, exactly as for verification (the body is not needed, so keys
can be recovered even from messages whose body was altered). e = 65537 is tried first, then 3.

A derived key proves that the messages verifying with it were signed by one and the same key: it
is consistency between messages, not attribution. It is written with the provenance
"derived, not anchored" until someone anchors it (an archived DNS record, the signer's own word).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from leaktriage.auth import canonical as M
from leaktriage.auth.dkimverify import ALGORITHM_HASHES, emsa_pkcs1_v15, signed_header_data, strict_b64decode
from leaktriage.auth.keystore import DERIVED

try:
    import gmpy2
    _mpz = gmpy2.mpz
    _gcd = gmpy2.gcd
except ImportError:  # pragma: no cover - far slower, still correct
    import math
    gmpy2 = None
    _mpz = int
    _gcd = math.gcd

EXPONENTS = (65537, 3)
MIN_BITS = 512
# s^e is computed without a modulus: its size is e times the signature's. Real DKIM keys are 512 to
# 4096 bits (RFC 8301 asks for 1024-4096); a crafted b= of a megabyte would need 65537 MB. Only
# signatures of a plausible RSA size are used, and so many h= names at most.
MAX_SIG_BYTES = 1024
MAX_SIGNED_FIELDS = 256
SMALL_PRIME_LIMIT = 1 << 20


def collect_signatures(messages: Iterable[bytes]) -> Dict[Tuple[str, str, int], List[Dict[str, Any]]]:
    """Group the RSA DKIM signatures of the messages by (d, s, signature length in bytes)."""
    from dkim.util import parse_tag_value
    groups: Dict[Tuple[str, str, int], List[Dict[str, Any]]] = {}
    seen = set()
    for mi, raw in enumerate(messages):
        try:
            data, _ = M.normalise_line_endings(bytes(raw))
            headers, _, _ = M.split_message(data)
        except Exception:
            continue
        for h in headers:
            if M.header_name(h) != "dkim-signature":
                continue
            try:
                tags = parse_tag_value(h[1].replace(b"\r\n", b""))
                a = tags[b"a"].strip().lower().decode("ascii")
                if a not in ("rsa-sha256", "rsa-sha1"):
                    continue
                d = tags[b"d"].strip().lower().decode("ascii")
                s = tags[b"s"].strip().decode("ascii")
                sig = strict_b64decode(tags[b"b"])
                hnames = [x.strip().lower() for x in tags[b"h"].decode("ascii", "replace").split(":") if x.strip()]
                c = tags.get(b"c", b"simple/simple").strip().lower().decode("ascii")
                halg = c.split("/")[0]
                if not sig or halg not in ("simple", "relaxed") or not (MIN_BITS // 8 <= len(sig) <= MAX_SIG_BYTES) \
                        or len(hnames) > MAX_SIGNED_FIELDS:
                    continue
            except Exception:
                continue
            if sig in seen:
                continue          # the same signed message stored twice proves nothing more
            seen.add(sig)
            hashname = ALGORITHM_HASHES[a]
            digest = getattr(hashlib, hashname)(signed_header_data(headers, h, hnames, halg)).digest()
            em = emsa_pkcs1_v15(digest, hashname, len(sig))
            if em is None:
                continue
            groups.setdefault((d, s, len(sig)), []).append(
                {"message": mi, "s": int.from_bytes(sig, "big"), "m": int.from_bytes(em, "big")})
    return groups


def _small_primes(limit: int) -> List[int]:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, limit + 1, i)))
    return [i for i in range(limit + 1) if sieve[i]]


_PRIMES: Optional[List[int]] = None


def _strip_small(g, target_bits: int):
    global _PRIMES
    if _PRIMES is None:
        _PRIMES = _small_primes(SMALL_PRIME_LIMIT)
    for p in _PRIMES:
        if g.bit_length() <= target_bits:
            break
        while g % p == 0 and g.bit_length() > target_bits:
            g //= p
    return g


def recover_pair(a: Dict[str, Any], b: Dict[str, Any], k: int, extra: Iterable[Dict[str, Any]] = ()
                 ) -> Optional[Tuple[int, int]]:
    """(n, e) from two signatures of k bytes, or None."""
    target = 8 * k
    for e in EXPONENTS:
        g = _gcd(_mpz(a["s"]) ** e - a["m"], _mpz(b["s"]) ** e - b["m"])
        g = _strip_small(g, target)
        for c in extra:
            if g.bit_length() <= target:
                break
            g = _strip_small(_gcd(g, _mpz(c["s"]) ** e - c["m"]), target)
        if g.bit_length() < MIN_BITS or g.bit_length() > target:
            continue
        n = int(g)
        if all(pow(x["s"], e, n) == x["m"] for x in (a, b)):
            return n, e
    return None


def _txt(n: int, e: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    der = rsa.RSAPublicNumbers(e, n).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")


def recover_keys(messages: Iterable[bytes], *, max_pairs: int = 6,
                 map_fn: Callable[[Callable, Iterable], Iterable] = map) -> List[Dict[str, Any]]:
    """Derive one key per (d, s) that has at least two distinct signatures.

    Returns [{"name", "txt", "bits", "e", "provenance", "messages_used", "signatures",
    "signatures_verified", "seconds"}], in (d, s) order. Pairs are tried in order (1st+2nd,
    3rd+4th, ..., then every other pair 1st+3rd, 1st+4th, 2nd+3rd, ...) up to max_pairs per group; a
    signature over altered headers just makes its pairs fail. Each failed pair costs as much as a
    success (about 30 s for 2048 bits).

    map_fn(fn, tasks) runs the keys' work, one task per (d, s), and gives the results in order: the
    builtin map runs it here; the CLI passes a worker pool's imap, so that keys are recovered in
    parallel and Ctrl-C is answered at once (s^e and the gcd of two 2048-bit signatures are single
    C calls of several seconds each, during which this process cannot handle a signal).
    """
    by_key: Dict[Tuple[str, str], List[Tuple[int, List[Dict[str, Any]]]]] = {}
    for (d, s, k), sigs in sorted(collect_signatures(messages).items()):
        if len(sigs) >= 2:
            by_key.setdefault((d, s), []).append((k, sigs))
    tasks = [(d, s, groups, max_pairs) for (d, s), groups in sorted(by_key.items())]
    return [key for key in map_fn(recover_one, tasks) if key is not None]


def recover_one(task: Tuple[str, str, List[Tuple[int, List[Dict[str, Any]]]], int]) -> Optional[Dict[str, Any]]:
    """The key of one (d, s), from its groups of signatures of one size each, or None."""
    d, s, groups, max_pairs = task
    for k, sigs in groups:
        pairs = [(i, i + 1) for i in range(0, len(sigs) - 1, 2)]
        pairs += [(i, j) for i in range(len(sigs)) for j in range(i + 1, len(sigs)) if (i, j) not in pairs]
        t0 = time.monotonic()
        for i, j in pairs[:max_pairs]:
            extra = [sigs[x] for x in range(len(sigs)) if x not in (i, j)][:2]
            try:
                r = recover_pair(sigs[i], sigs[j], k, extra)
            except (MemoryError, OverflowError):
                r = None
            if r is None:
                continue
            n, e = r
            verified = sum(1 for x in sigs if pow(x["s"], e, n) == x["m"])
            return {"name": "%s._domainkey.%s" % (s, d), "txt": _txt(n, e), "bits": n.bit_length(),
                    "e": e, "provenance": DERIVED, "messages_used": 2,
                    "signatures": len(sigs), "signatures_verified": verified,
                    "seconds": round(time.monotonic() - t0, 2)}
    return None


def write_keystore(path: str, keys: List[Dict[str, Any]]) -> None:
    """Write derived keys as a JSON key store (KeyStore.load reads it back)."""
    obj = {}
    for kdict in keys:
        obj[kdict["name"]] = {"txt": kdict["txt"], "provenance": kdict.get("provenance", DERIVED),
                              "bits": kdict.get("bits"), "messages_used": kdict.get("messages_used"),
                              "signatures_verified": kdict.get("signatures_verified")}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
