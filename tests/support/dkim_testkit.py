"""Test support (not used by the scanner): generate RSA/Ed25519 DKIM keys and sign messages with
full control of every tag (x=, t=, l=, c=, a=), including ARC sets, so tests and sample dumps can
be built offline. RSA keys are generated with gmpy2 so that 512-bit keys are possible (the
cryptography package refuses to generate keys under 1024 bits)."""
from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from leaktriage.auth import canonical as M
from leaktriage.auth.dkimverify import emsa_pkcs1_v15, signed_header_data

_CACHE: Dict[Tuple[int, int], "RSAKey"] = {}


@dataclass
class RSAKey:
    n: int
    e: int
    d: int

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    def txt(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        der = rsa.RSAPublicNumbers(self.e, self.n).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")

    def sign_digest(self, digest: bytes, hashname: str) -> bytes:
        k = (self.n.bit_length() + 7) // 8
        em = emsa_pkcs1_v15(digest, hashname, k)
        return pow(int.from_bytes(em, "big"), self.d, self.n).to_bytes(k, "big")

    def pem(self) -> bytes:
        """PKCS#1 PEM of the private key (for dkimpy's own signer)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        p, q = self._pq()
        priv = rsa.RSAPrivateNumbers(p, q, self.d, self.d % (p - 1), self.d % (q - 1), pow(q, -1, p),
                                     rsa.RSAPublicNumbers(self.e, self.n)).private_key()
        return priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())

    def _pq(self):
        from cryptography.hazmat.primitives.asymmetric.rsa import rsa_recover_prime_factors
        return rsa_recover_prime_factors(self.n, self.e, self.d)


def rsa_key(bits: int, seed: int = 1, e: int = 65537) -> RSAKey:
    """Deterministic RSA key of exactly `bits` bits (cached per (bits, seed))."""
    if (bits, seed) in _CACHE:
        return _CACHE[(bits, seed)]
    import gmpy2
    rnd = random.Random(bits * 1000 + seed)
    while True:
        half = bits // 2
        p = int(gmpy2.next_prime(rnd.getrandbits(half) | (3 << (half - 2))))
        q = int(gmpy2.next_prime(rnd.getrandbits(bits - half) | (3 << (bits - half - 2))))
        n = p * q
        phi = (p - 1) * (q - 1)
        if p != q and n.bit_length() == bits and gmpy2.gcd(e, phi) == 1:
            key = RSAKey(n, e, int(gmpy2.invert(e, phi)))
            _CACHE[(bits, seed)] = key
            return key


def ed25519_key(seed: int = 1):
    """(private key object, TXT value)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    priv = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ed%d" % seed).digest())
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv, "v=DKIM1; k=ed25519; p=" + base64.b64encode(pub).decode("ascii")


def sign(msg: bytes, key, *, d: str = "example.com", s: str = "sel", a: str = "rsa-sha256",
         c: str = "relaxed/relaxed", h: Sequence[str] = ("from", "to", "subject", "date", "message-id"),
         l: bool = False, t: Optional[int] = 1700000000, x: Optional[int] = None,
         i: Optional[str] = None, extra_tags: str = "", header_name: bytes = b"DKIM-Signature") -> bytes:
    """Return msg (CRLF) with a DKIM-Signature header field prepended."""
    data, _ = M.normalise_line_endings(msg)
    headers, body, _ = M.split_message(data)
    halg, balg = (c.split("/") + ["simple"])[:2]
    cb = M.canon_body(body, balg)
    hashname = "sha1" if a == "rsa-sha1" else "sha256"
    bh = base64.b64encode(getattr(hashlib, hashname)(cb).digest()).decode()
    tags = ["v=1", "a=" + a, "c=" + c, "d=" + d, "s=" + s]
    if i:
        tags.append("i=" + i)
    if l:
        tags.append("l=%d" % len(cb))
    if t is not None:
        tags.append("t=%d" % t)
    if x is not None:
        tags.append("x=%d" % x)
    if extra_tags:
        tags.append(extra_tags)
    tags += ["h=" + ":".join(h), "bh=" + bh]
    value = b" " + "; ".join(tags).encode() + b";\r\n\tb="
    hdr = (header_name, value + b"\r\n")
    digest = getattr(hashlib, hashname)(signed_header_data(headers, hdr, [x_.lower() for x_ in h], halg)).digest()
    if isinstance(key, RSAKey):
        sig = key.sign_digest(digest, hashname)
    else:
        sig = key.sign(digest)
    b64 = base64.b64encode(sig).decode()
    folded = "\r\n\t".join(b64[k:k + 64] for k in range(0, len(b64), 64)).encode()
    return header_name + b":" + value + folded + b"\r\n" + data


def arc_seal(msg: bytes, key: RSAKey, *, d: str = "relay.example.net", s: str = "arc",
             srv: str = "relay.example.net", results: str = "spf=pass smtp.mailfrom=example.com",
             h: Sequence[str] = ("from", "to", "subject", "date", "message-id"), t: int = 1700000100,
             cv: Optional[str] = None) -> bytes:
    """Add the next ARC set (AAR, AMS, AS) on top of a message, as an intermediary would.

    The instance is one more than the highest present; cv defaults to "none" for i=1 and "pass"
    after. The seal signs every earlier set (AAR, AMS, AS in instance order) and its own AAR and AMS.
    """
    import re as _re
    data, _ = M.normalise_line_endings(msg)
    headers, body, _ = M.split_message(data)
    arc = [x for x in headers if M.header_name(x) in ("arc-seal", "arc-message-signature", "arc-authentication-results")]
    inst = max([int(_re.search(rb"i\s*=\s*(\d+)", v).group(1)) for _, v in arc] or [0]) + 1
    if cv is None:
        cv = "none" if inst == 1 else "pass"
    bh = base64.b64encode(hashlib.sha256(M.canon_body(body, "relaxed")).digest()).decode()
    aar = (b"ARC-Authentication-Results", (" i=%d; %s; %s\r\n" % (inst, srv, results)).encode())
    ams_v = (" i=%d; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%d; h=%s; bh=%s;\r\n\tb="
             % (inst, d, s, t, ":".join(h), bh)).encode()
    ams_h = (b"ARC-Message-Signature", ams_v + b"\r\n")
    dg = hashlib.sha256(signed_header_data(headers, ams_h, list(h), "relaxed")).digest()
    ams = (b"ARC-Message-Signature", ams_v + base64.b64encode(key.sign_digest(dg, "sha256")) + b"\r\n")
    as_v = (" i=%d; cv=%s; a=rsa-sha256; d=%s; s=%s; t=%d;\r\n\tb=" % (inst, cv, d, s, t)).encode()
    as_h = (b"ARC-Seal", as_v + b"\r\n")

    def inst_of(x):
        return int(_re.search(rb"i\s*=\s*(\d+)", x[1]).group(1))
    order = {"arc-authentication-results": 0, "arc-message-signature": 1, "arc-seal": 2}
    prior = sorted(arc, key=lambda x: (inst_of(x), order[M.header_name(x)]))
    covered = [M.canon_header(x, "relaxed") for x in prior + [aar, ams]]
    own = M.canon_header((as_h[0], M.strip_b_tag(as_h[1])), "relaxed")[:-2]
    dg = hashlib.sha256(b"".join(covered) + own).digest()
    seal = (b"ARC-Seal", as_v + base64.b64encode(key.sign_digest(dg, "sha256")) + b"\r\n")
    return b"".join(x[0] + b":" + x[1] for x in (seal, ams, aar)) + data


def message(subject: str = "Quarterly figures", body: bytes = b"Hello,\r\n\r\nthe figures are attached.\r\n\r\nRegards\r\n",
            received: Optional[str] = "Tue, 14 Nov 2023 22:15:00 +0000", frm: str = "Alice <alice@example.com>",
            extra_headers: Sequence[str] = ()) -> bytes:
    """A plain CRLF test message (Received header on top if `received` is given)."""
    lines = []
    if received:
        lines.append("Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n\tby mx.example.org (Postfix) with ESMTPS id 4SVxyz1234\r\n\tfor <bob@example.org>; %s" % received)
    lines += ["From: " + frm, "To: Bob <bob@example.org>", "Subject: " + subject,
              "Date: Tue, 14 Nov 2023 22:13:20 +0000", "Message-ID: <20231114221320.1234@example.com>",
              "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    lines += list(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def prepend_after_received(signed: bytes, header_line: bytes) -> bytes:
    """Insert a raw header line at the very top (what a relay adding a header would do)."""
    return header_line + b"\r\n" + signed


def write_signed_samples(folder: str) -> Dict[str, List[str]]:
    """Write a small deterministic set of DKIM-signed messages and their key store into `folder`
    (for the samples/ dump): returns {file name: [expected verdict per signature]}.

    signed-pass.eml (relaxed/relaxed, 1024 bits), signed-altered-body.eml (body changed after
    signing), signed-l-appended.eml (l= with a paragraph appended), signed-lf-only.eml (simple/simple
    stored with LF line endings), signed-weak-key.eml (512 bits), signed-unknown-key.eml (selector
    not in the key store); dkim-keys.json holds the keys of example.com with a provenance note.
    """
    import json
    import os
    key, weak = rsa_key(1024, seed=42), rsa_key(512, seed=42)
    rcv = "Tue, 14 Nov 2023 22:15:00 +0000"
    def with_received(signed: bytes) -> bytes:
        return ("Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n\tby mx.example.org "
                "(Postfix) with ESMTPS id 4SVxyz1234\r\n\tfor <bob@example.org>; %s\r\n" % rcv).encode() + signed
    base = message(received=None)
    files = {
        "signed-pass.eml": (with_received(sign(base, key, s="s2023")), ["pass"]),
        "signed-altered-body.eml": (with_received(sign(base, key, s="s2023")).replace(b"the figures are attached", b"the figures are NOT attached"), ["body-hash-mismatch"]),
        "signed-l-appended.eml": (with_received(sign(base, key, s="s2023", l=True)) + b"\r\nPS: new bank details: account 0000 1111.\r\n", ["pass"]),
        "signed-lf-only.eml": (with_received(sign(base, key, s="s2023", c="simple/simple")).replace(b"\r\n", b"\n"), ["pass"]),
        "signed-weak-key.eml": (with_received(sign(base, weak, s="weak")), ["pass-weak-key"]),
        "signed-unknown-key.eml": (with_received(sign(base, key, s="gone")), ["no-key"]),
    }
    os.makedirs(folder, exist_ok=True)
    for name, (data, _) in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    store = {"s2023._domainkey.example.com": {"txt": key.txt(), "provenance": "generated test key (tests/support/dkim_testkit.py, seed 42)"},
             "weak._domainkey.example.com": {"txt": weak.txt(), "provenance": "generated 512-bit test key (seed 42)"}}
    with open(os.path.join(folder, "dkim-keys.json"), "w", encoding="utf-8") as f:
        json.dump(store, f, indent=1, sort_keys=True)
        f.write("\n")
    return {name: v for name, (_, v) in files.items()}
