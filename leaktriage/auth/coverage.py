"""What a DKIM signature does not cover: indicators computed from the signature results and headers."""
from __future__ import annotations

import functools
import re
from email.utils import getaddresses
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from leaktriage.auth.codes import indicator

SINGLETONS = ("from", "to", "cc", "subject", "date", "message-id", "content-type")

# Two-label public suffixes under which the organisational domain has three labels. A small list
# on purpose (no network, no large data): extend it when a dump needs it.
PUBLIC_SUFFIX_2 = frozenset("""
co.uk org.uk ac.uk gov.uk ltd.uk plc.uk me.uk net.uk nhs.uk police.uk sch.uk
com.au net.au org.au edu.au gov.au asn.au id.au
co.nz org.nz net.nz govt.nz ac.nz
co.jp ne.jp or.jp ac.jp go.jp
co.za org.za gov.za ac.za
com.br net.br org.br gov.br
com.cn net.cn org.cn gov.cn edu.cn
co.in net.in org.in gov.in ac.in
com.mx org.mx gob.mx
com.tr org.tr gov.tr
com.ar com.co com.pe com.ve com.ec com.uy
co.kr or.kr go.kr ac.kr
com.sg com.my com.hk com.tw com.ph com.pk com.sa com.eg com.ua com.ru
co.il org.il ac.il gov.il co.id or.id go.id ac.id co.th ac.th go.th
gouv.fr asso.fr nom.fr
""".split())


def org_domain(domain: Optional[str]) -> Optional[str]:
    """Organisational domain: the last two labels, three under a listed two-label public suffix."""
    if not domain:
        return None
    labels = [x for x in domain.strip().strip(".").lower().split(".") if x]
    if len(labels) < 2:
        return ".".join(labels) or None
    if len(labels) >= 3 and ".".join(labels[-2:]) in PUBLIC_SUFFIX_2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def from_domain(headers: Sequence[Tuple[str, str]]) -> Optional[str]:
    """Domain of the first address of the (first) From header."""
    for name, value in headers:
        if name.strip().lower() == "from":
            return _domain_of(value or "")
    return None


@functools.lru_cache(maxsize=4096)
def _domain_of(value: str) -> Optional[str]:
    # a dump has few senders and many messages each: the stdlib address parser runs once per sender
    try:
        addrs = getaddresses([value])
    except Exception:
        addrs = []
    for _, addr in addrs:
        if "@" in addr:
            return addr.rsplit("@", 1)[1].strip().strip(">").lower() or None
    m = re.search(r"@([A-Za-z0-9.-]+)", value)
    return m.group(1).lower() if m else None


def coverage_indicators(sigs: Iterable[Dict[str, Any]], headers: Sequence[Tuple[str, str]]
                        ) -> List[Dict[str, Any]]:
    """Indicators for what each DKIM signature leaves uncovered.

    sigs: results of verify_dkim; headers: (name, decoded value) in message order. Signatures
    whose tag list could not be read (no d= or h=) are skipped.
    """
    out: List[Dict[str, Any]] = []
    counts: Dict[str, int] = {}
    for name, _ in headers:
        n = name.strip().lower()
        counts[n] = counts.get(n, 0) + 1
    fdom = from_domain(headers)
    for sig in sigs:
        h = sig.get("h") or []
        d = sig.get("d")
        if not d or not h:
            continue
        base = {"signature": sig.get("index"), "d": d, "s": sig.get("s"), "verdict": sig.get("verdict")}
        l = sig.get("l")
        unsigned = sig.get("unsigned_body_bytes")
        if l is not None and unsigned:
            out.append(indicator("auth.dkim_body_length_limit",
                                 {**base, "l": l, "body_length": sig.get("body_length"),
                                  "unsigned_bytes": unsigned},
                                 "The signature covers only the first %d bytes of the body; %d bytes after them are not signed and could have been added by anyone." % (l, unsigned)))
        if "from" not in h:
            out.append(indicator("auth.dkim_from_not_signed", {**base, "h": h},
                                 "From is not among the signed header fields, so the signature says nothing about the author."))
        signed_times = {n: h.count(n) for n in SINGLETONS}
        for n in SINGLETONS:
            present = counts.get(n, 0)
            if present > 1:
                covered = min(signed_times[n], present)
                why = ("only the bottom-most %d covered, so an added copy (which mail programs may display) is not protected" % covered
                       if covered < present else "all copies are signed, but a header that must appear once appears several times")
                out.append(indicator("auth.dkim_singleton_repeated",
                                     {**base, "header": n, "present": present, "signed": signed_times[n]},
                                     "%s appears %d times; %s." % (n, present, why)))
            elif present >= 1 and signed_times[n] == 0:
                out.append(indicator("auth.dkim_singleton_unsigned",
                                     {**base, "header": n, "present": present},
                                     "%s is present but not signed: it could have been changed without breaking the signature." % n))
        if fdom is not None:
            od, of = org_domain(d), org_domain(fdom)
            if od != of:
                out.append(indicator("auth.dkim_not_aligned",
                                     {**base, "from_domain": fdom, "d_org": od, "from_org": of},
                                     "The signer %s is not the From domain %s: the signature vouches for the sending service, not for the author's domain." % (d, fdom)))
    return out
