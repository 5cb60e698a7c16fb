"""Coverage, Received chain, hidden timestamps, Message-ID style and the per-message analysis."""
import email
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leaktriage.auth import CODES, KeyStore, analyse_message, org_domain  # noqa: E402
from support import dkim_testkit as T  # noqa: E402
from leaktriage.auth.received import parse_received, parse_received_chain, received_indicators  # noqa: E402
from leaktriage.auth.timestamps import gmail_boundary_time, hidden_timestamps, message_id_style, thread_index_time, timestamp_indicators, x_received_time

CORPORA = Path(os.environ.get("LEAKTRIAGE_CORPORA") or REPO.parent / "shared" / "corpora")
KEY = T.rsa_key(1024)
KS = KeyStore.from_dict({"sel._domainkey.example.com": KEY.txt()})


def need_corpus(sub):
    p = CORPORA / sub
    if not p.is_dir():
        msg = "corpus folder %s is missing (set LEAKTRIAGE_CORPORA to the shared corpora folder)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def hdrs(raw):
    return [(k, str(v)) for k, v in email.message_from_bytes(raw).items()]


def codes(res):
    return [i["code"] for i in res["indicators"]]


def test_indicator_shape_and_code_table():
    import leaktriage.model.problems as P
    for code, (sev, stage, desc) in CODES.items():
        assert code.startswith("auth.") and sev in ("info", "warning", "error") and stage == "auth" and desc
        assert stage in P.STAGES
    raw = T.sign(T.message(received=None), KEY, l=True) + b"appended\r\n"
    res = analyse_message(raw, hdrs(raw), keystore=KS)
    assert res["indicators"]
    for i in res["indicators"]:
        assert set(i) == {"code", "severity", "evidence", "explanation"}
        assert i["code"] in CODES and i["severity"] == CODES[i["code"]][0]
        assert isinstance(i["evidence"], dict) and i["explanation"]


# --- coverage ------------------------------------------------------------------------------------

def test_org_domain():
    assert org_domain("mail.example.com") == "example.com"
    assert org_domain("news.bbc.co.uk") == "bbc.co.uk"
    assert org_domain("bbc.co.uk") == "bbc.co.uk"
    assert org_domain("en-marche.fr") == "en-marche.fr"
    assert org_domain(None) is None


def test_duplicate_from_added_on_top():
    raw = T.sign(T.message(received=None), KEY)
    forged = b"From: CEO <ceo@example.com>\r\n" + raw
    res = analyse_message(forged, hdrs(forged), keystore=KS)
    assert res["dkim"][0]["verdict"] == "pass"        # RFC 6376: the bottom-most From is the signed one
    ind = [i for i in res["indicators"] if i["code"] == "auth.dkim_singleton_repeated"]
    assert len(ind) == 1 and ind[0]["evidence"]["header"] == "from"
    assert ind[0]["evidence"]["present"] == 2 and ind[0]["evidence"]["signed"] == 1


def test_unsigned_singletons_and_alignment():
    raw = T.sign(T.message(received=None), KEY, d="esp.example.net", h=("from", "date"))
    ks = KeyStore.from_dict({"sel._domainkey.esp.example.net": KEY.txt()})
    res = analyse_message(raw, hdrs(raw), keystore=ks)
    assert res["dkim_summary"] == "pass"
    unsigned = sorted(i["evidence"]["header"] for i in res["indicators"] if i["code"] == "auth.dkim_singleton_unsigned")
    assert unsigned == ["content-type", "message-id", "subject", "to"]
    al = [i for i in res["indicators"] if i["code"] == "auth.dkim_not_aligned"]
    assert len(al) == 1 and al[0]["evidence"]["from_domain"] == "example.com" and al[0]["evidence"]["d_org"] == "example.net"
    aligned = T.sign(T.message(received=None, frm="Alice <alice@mail.example.com>"), KEY)
    assert "auth.dkim_not_aligned" not in codes(analyse_message(aligned, hdrs(aligned), keystore=KS))


def test_summary_words():
    raw = T.sign(T.message(received=None), KEY)
    assert analyse_message(raw, hdrs(raw), keystore=KS)["dkim_summary"] == "pass"
    assert analyse_message(raw, hdrs(raw))["dkim_summary"] == "no-key"
    bad = raw.replace(b"attached", b"attacked")
    res = analyse_message(bad, hdrs(bad), keystore=KS)
    assert res["dkim_summary"] == "fail" and "auth.dkim_body_hash_mismatch" in codes(res)
    plain = T.message(received=None)
    assert analyse_message(plain, hdrs(plain))["dkim_summary"] == "none"


# --- Received -------------------------------------------------------------------------------------

def test_parse_received_hop():
    hop = parse_received("from mail-pl1-f178.google.com (mail-pl1-f178.google.com [209.85.214.178])\n"
                         "    (using TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits))\n"
                         "    (No client certificate requested)\n    by mail-tester.com (Postfix) with ESMTPS id 446789FF9D\n"
                         "    for <test-hicvi@mail-tester.com>; Sun,  8 Dec 2019 10:33:17 +0100 (CET)")
    assert hop["from"] == "mail-pl1-f178.google.com" and hop["by"] == "mail-tester.com"
    assert hop["with"] == "ESMTPS" and hop["id"] == "446789FF9D" and hop["for"] == "test-hicvi@mail-tester.com"
    assert hop["date"] == "2019-12-08T09:33:17Z" and hop["ips"] == ["209.85.214.178"]
    hop = parse_received("from HE1PR0401MB2427.eurprd04.prod.outlook.com ([fe80::6c6b:8ff2:78ef:2d1e]) by "
                         "HE1PR0401MB2427.eurprd04.prod.outlook.com ([fe80::6c6b:8ff2:78ef:2d1e%5]) with mapi id "
                         "15.20.2516.018; Sun, 8 Dec 2019 09:34:23 +0000")
    assert hop["with"] == "mapi" and hop["ips"] == ["fe80::6c6b:8ff2:78ef:2d1e", "fe80::6c6b:8ff2:78ef:2d1e%5"]


def test_real_received_chains_are_clean():
    base = need_corpus("dkim-real")
    for msg, n, top in (("message-gmail.eml", 3, "2019-12-08T09:33:19Z"), ("message-outlook.eml", 5, "2019-12-08T09:34:25Z")):
        raw = (base / "hamcrest-mail" / msg).read_bytes()
        res = analyse_message(raw, hdrs(raw), keystore=KeyStore.load(base / "keys"))
        assert len(res["received"]) == n and res["received_at"] == top
        assert res["dkim_summary"] == "pass"
        assert not [c for c in codes(res) if c.startswith(("auth.received", "auth.date", "auth.hidden", "auth.message_id"))]


def chain(*dates, date="Mon, 1 Jan 2024 10:00:00 +0000"):
    hs = [("Received", "from a.example by b.example with ESMTP id %d; %s" % (k, d)) for k, d in enumerate(dates)]
    return parse_received_chain(hs), date


def test_received_out_of_order_long_delay_and_date():
    hops, date = chain("Mon, 1 Jan 2024 10:01:00 +0000", "Mon, 1 Jan 2024 10:00:30 +0000")
    assert received_indicators(hops, date) == []
    hops, date = chain("Mon, 1 Jan 2024 10:00:00 +0000", "Mon, 1 Jan 2024 11:00:00 +0100", "Mon, 1 Jan 2024 10:30:00 +0000")
    ind = received_indicators(hops, "Mon, 1 Jan 2024 09:59:00 +0000")
    assert [i["code"] for i in ind] == ["auth.received_out_of_order"]
    assert ind[0]["evidence"]["delay_seconds"] == -1800
    hops, _ = chain("Tue, 9 Jan 2024 10:00:00 +0000", "Mon, 1 Jan 2024 10:00:00 +0000")
    assert [i["code"] for i in received_indicators(hops, "Mon, 1 Jan 2024 10:00:00 +0000")] == ["auth.received_long_delay"]
    hops, _ = chain("Mon, 1 Jan 2024 10:00:00 +0000")
    ind = received_indicators(hops, "Mon, 1 Jan 2024 12:00:00 +0000")
    assert [i["code"] for i in ind] == ["auth.date_far_from_first_hop"] and ind[0]["evidence"]["delta_seconds"] == 7200
    ind = received_indicators(hops, "Wed, 27 Dec 2023 10:00:00 +0000")
    assert [i["code"] for i in ind] == ["auth.date_far_from_first_hop"]
    hops, _ = chain("yesterday-ish")
    assert [i["code"] for i in received_indicators(hops, None)] == ["auth.received_date_invalid"]


# --- hidden timestamps ----------------------------------------------------------------------------

def test_gmail_boundary_and_x_received_decode():
    assert gmail_boundary_time("000000000000eb957105992df7ad") == datetime(2019, 12, 8, 9, 33, 15, 542897, tzinfo=timezone.utc)
    assert gmail_boundary_time("0000000000007e1d0b05992df7ad") == datetime(2019, 12, 8, 9, 33, 8, 368651, tzinfo=timezone.utc)
    assert gmail_boundary_time("----=_Part_1") is None
    assert x_received_time("by 2002:a17:90a:4e5:: with SMTP id g92mr26022417pjg.94.1575797595540;\n Sun, 08 Dec 2019") == \
        datetime(2019, 12, 8, 9, 33, 15, 540000, tzinfo=timezone.utc)


def test_thread_index_decode():
    t, replies = thread_index_time("AQHVraqsfF1n/ybDhUeAU8vsv9+SRQ==")
    assert replies == 0
    assert t == datetime(2019, 12, 8, 9, 34, 21, 902438, tzinfo=timezone.utc)
    # a real reply (Exchange Online, Date 27 Sep 2019 11:56:21 +0000): its block holds the delta
    # from bytes 0-5 read as a FILETIME, modulo 2**54 (tests/test_trust_mail_threadindex.py)
    t2, replies = thread_index_time("AQHVdJmSz7FwOb+ZL0aIExPYLyfVU6c/a/SA")
    assert replies == 1 and t2 == datetime(2019, 9, 27, 11, 56, 20, 219289, tzinfo=timezone.utc)
    assert thread_index_time("not base64!") is None and thread_index_time("AAAA") is None


def test_real_hidden_timestamps_agree():
    base = need_corpus("dkim-real")
    g = hdrs((base / "hamcrest-mail" / "message-gmail.eml").read_bytes())
    st = hidden_timestamps(g)
    assert [(s["source"], s["time"]) for s in st] == [("x-received", "2019-12-08T09:33:15.540000Z"),
                                                       ("gmail-mime-boundary", "2019-12-08T09:33:15.542897Z")]
    assert timestamp_indicators(g) == []
    o = hdrs((base / "hamcrest-mail" / "message-outlook.eml").read_bytes())
    assert [(s["source"], s["time"]) for s in hidden_timestamps(o)] == [("thread-index", "2019-12-08T09:34:21.902438Z")]
    # the same real message with its Date set back a day: the hidden stamps contradict it
    backdated = [(k, "Sat, 7 Dec 2019 10:33:04 +0100" if k == "Date" else v) for k, v in g]
    ind = timestamp_indicators(backdated)
    assert [i["code"] for i in ind] == ["auth.hidden_time_after_date"] * 2
    assert ind[1]["evidence"]["source"] == "gmail-mime-boundary" and ind[1]["evidence"]["delta_seconds"] == 86411.543
    forward = [(k, "Mon, 9 Dec 2019 09:34:23 +0000" if k == "Date" else v) for k, v in o]
    assert [i["code"] for i in timestamp_indicators(forward)] == ["auth.hidden_time_before_date"]


def test_message_id_style_vs_agent():
    assert message_id_style("<HE1PR0401MB24279B86E7353F5886A73526D6590@HE1PR0401MB2427.eurprd04.prod.outlook.com>") == "outlook-exchange-online"
    assert message_id_style("<CAHGZRyXM9M63fD=WQxoQM8qUvQS4ZYqJ3YmVOKpHFu5JhFB-ug@mail.gmail.com>") == "gmail"
    assert message_id_style("<000001d5adaa$ac7c5d60$0a00a8c0@PC1>") == "outlook-desktop"
    assert message_id_style("<3f2a1c9e-1b2c-4d5e-8f90-123456789abc@example.com>") == "thunderbird"
    hs = [("Message-ID", "<000001d5adaa$ac7c5d60$0a00a8c0@PC1>"), ("Date", "Mon, 1 Jan 2024 10:00:00 +0000"),
          ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; rv:102.0) Gecko/20100101 Thunderbird/102.6.0")]
    ind = timestamp_indicators(hs)
    assert [i["code"] for i in ind] == ["auth.message_id_agent_mismatch"]
    assert ind[0]["evidence"]["message_id_style"] == "outlook-desktop" and ind[0]["evidence"]["agent_family"] == "thunderbird"
    hs[2] = ("X-Mailer", "Microsoft Outlook 16.0")
    assert timestamp_indicators(hs) == []


@pytest.mark.parametrize("headers", [[], [("Received", "")], [("Date", "\x00")], [("Thread-Index", "A" * 10000)],
                                     [("Content-Type", 'multipart/mixed; boundary="000000000000ffffffffffffffff"')]])
def test_hostile_headers_never_raise(headers):
    res = analyse_message(b"", headers)
    assert "auth.internal_error" not in codes(res)


def test_received_word_splitter_matches_a_plain_scan():
    """The Received parser splits clauses with one regular expression; on any text it must give
    what a character-by-character scan gives: (position, word, parenthesis depth)."""
    import random
    from leaktriage.auth.received import _top_level_words

    def scan(text):
        out, depth, i = [], 0, 0
        while i < len(text):
            ch = text[i]
            if ch in "()":
                depth = depth + 1 if ch == "(" else max(0, depth - 1)
                i += 1
            elif ch.isspace():
                i += 1
            else:
                j = i
                while j < len(text) and not text[j].isspace() and text[j] not in "()":
                    j += 1
                out.append((i, text[i:j], depth))
                i = j
        return out

    rng = random.Random(6376)
    pool = list("ab ()\t\n;<>@.x1") + ["\u00a0", "\u2003", "\u3000", "é"]
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 30)))
        assert _top_level_words(text) == scan(text), repr(text)
    assert _top_level_words("from a (b (c) d) by e") == [(0, "from", 0), (5, "a", 0), (8, "b", 1), (11, "c", 2),
                                                          (14, "d", 1), (17, "by", 0), (20, "e", 0)]


IPV4_DEFINITION = re.compile(r"(?<![\d.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?![\d.])")
IP_TEXT = st.lists(st.sampled_from(["1", "25", "255", "256", "0", "192", ".", "..", " ", "(", "[", "a",
                                    "\u0661", "\u0662", "\u00a0", "\x1c", "\t\n", "10.0.0.1", "999"]),
                   max_size=25).map("".join)


@settings(max_examples=500, deadline=None)
@example("from x (1.1.1.1) by [0.0.0.0]; 256.1.1.1 1.2.3.4.5 \u0661.1.1.1")
@given(IP_TEXT)
def test_ipv4_shortcut_and_white_space_match_the_regex_definitions(text):
    """ipv4_addresses() finds what the lookaround regex finds (Unicode digits included), and the
    white-space collapse of parse_received equals re.sub(r"\\s+", " ", v).strip()."""
    import re
    from leaktriage.auth import received
    assert received.ipv4_addresses(text) == [m.group(1) for m in IPV4_DEFINITION.finditer(text)]
    assert " ".join(text.split()) == re.sub(r"\s+", " ", text).strip()
