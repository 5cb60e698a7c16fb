"""Issue #14 (trust), item 9: Outlook Thread-Index headers were decoded to impossible dates (2042 to
2098) and raised auth.hidden_time_after_date ("the Date may have been set back") on real mail; a
random Thread-Index (the generator writes random bytes) raised it too.

The decoding is checked against real headers of the three layouts Outlook and Exchange write
(Thread-Index values and Dates of public mailing-list messages: Linux kernel, Xen, QEMU, git and
OpenWrt lists, 2004-2025), and against the corpora; a time that cannot be true is recorded as
implausible, never compared with the Date. The tests fail on the code before the fix."""
from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta, timezone

import pytest

from conftest import by_kind, corpus
from leaktriage.auth import timestamps as ts
from leaktriage.auth.timestamps import hidden_timestamps, timestamp_indicators
from support.trust_mail import BASIC, msg, scan_one

# (Thread-Index, Date): real headers of each layout
REAL = {
    "exchange": [  # [MS-OXOMSG]: byte 0 reserved, bytes 1-5 the top 40 bits of the FILETIME
        ("AQHYnHLVENTK1UHdsEyeUwZej/8cmg==", "Wed, 20 Jul 2022 19:58:07 +0000"),
        ("AQHVdJmSz7FwOb+ZL0aIExPYLyfVU6c/a/SA", "Fri, 27 Sep 2019 11:56:21 +0000"),
        ("AQHaVbXxn3uZQDIUQEWAqG1gtcTZ8LD3Kj8AgAAEkIA=", "Fri, 2 Feb 2024 15:35:19 +0000"),
        ("AQHWW4kYTVU0hTDyYEitKlUuU5vZlKkKf2uAgAACLICAAR7YAIAAIxaAgAAB34CAAARBAIAAAV+AgAADXAA=",
         "Fri, 17 Jul 2020 14:01:10 +0000"),
        ("AQHcAuTPFh3B/4ChdE6GwpvHtJDnrbRT8avA", "Tue, 5 Aug 2025 11:26:57 +0000"),
    ],
    "legacy": [    # Outlook 2003/2007, Exchange 2003: bytes 0-5 the top 48 bits of the FILETIME
        ("AcSvcQAwHXz0fOQjRPG8+rJerlZAkQ==", "Mon, 11 Oct 2004 17:02:14 +0800"),
        ("AcQjW6m77dYTwQWVSSum5XTHDInVDgAAf8WQ", "Thu, 15 Apr 2004 19:58:07 -0700"),
        ("AcaGRtIDk32mHzBMTdqcqq5tQbqNEwAR8Mzg", "Fri, 2 Jun 2006 14:54:11 -0700"),
        ("AcjzQpKt1InvJeuJRmaYho7KUAh5pgAAIhlg", "Thu, 31 Jul 2008 15:29:32 -0400"),
    ],
    "no-header-time": [  # Outlook 2010+ desktop: byte 1 is 0x02, the header holds no time
        ("AQIoIhiQoNl9y+8EvClCms9DfxFPh6orvslQ", "Fri, 30 Apr 2021 13:54:52 -0700"),
        ("AQIJfv1jP4fCJU6d0eNUL65zTb1lhAKJjZPCAZLY/IEByWeHd6hQeooA", "Tue, 23 Jun 2020 12:46:41 +0100"),
        ("AQIhsC26HFNXVNf5LMacgAbi0X2P9gIuBdH5AgQ1j9EAzDU6SAHd2fuOAzRbc6QCZvCE2AIPCL7WANNwrfABx6z0HgKAOAv2AfSTz54DIB"
         "k6npYMuAkA", "Tue, 04 Sep 2012 23:48:01 +0200"),
        ("AQJBfM1NZ79tOwTjV9JMAWTB41mHwAEp4l6fAUlxpxgB63ujzwEtsjn4AGA7hGgBwZOndgHl09nTAwh+IZKlt1dC8A==",
         "Sat, 10 Aug 2019 18:46:03 +0200"),
        ("AQJv0F5Exw0TPnXaZfUwlO9P/EDe8gDs17xJrwnTElA=", "Fri, 6 Oct 2023 10:00:35 -0600"),
    ],
}


def _date(s):
    from email.utils import parsedate_to_datetime
    return parsedate_to_datetime(s).astimezone(timezone.utc)


@pytest.mark.parametrize("layout,value,date", [(k, v, d) for k, vs in REAL.items() for v, d in vs])
def test_real_thread_index_decodes_to_its_own_date(layout, value, date):
    """The time of the message in its conversation: at most half an hour before its Date (the
    reply was written, then sent), never after it; no tampering indicator."""
    assert [i["code"] for i in timestamp_indicators([("Date", date), ("Thread-Index", value)])] == []
    r = ts.thread_index(value)
    assert r["layout"] == layout and not r.get("implausible")
    assert r["replies"] == (len(base64.b64decode(value)) - 22) // 5
    delta = (r["time"] - _date(date)).total_seconds()
    assert -30 * 60 < delta < 60, (r["time"], date)


def test_thread_index_in_the_corpora():
    """Every top-level Thread-Index of the shared corpora (test mail of mimekit, mikel/mail,
    spamscope, dkim-real; three layouts, one with eight replies): none raises
    hidden_time_after_date (before this change one decoded to 2063 and did)."""
    import email
    root = corpus("dkim-real").parent
    seen = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.stat().st_size > 5 << 20:
            continue
        raw = p.read_bytes()
        if b"thread-index:" not in raw.lower():
            continue
        hs = [(k, str(v)) for k, v in email.message_from_bytes(raw).items()]
        if not any(k.lower() == "thread-index" for k, _ in hs):
            continue
        seen += 1
        assert "auth.hidden_time_after_date" not in [i["code"] for i in timestamp_indicators(hs)], p
    assert seen >= 7


def test_random_thread_index_values_raise_no_alarm():
    """The generator writes random bytes; the old decoder read a date from any of them (1.8% raised
    hidden_time_after_date on a generated dump). Byte 0, the layout and the GUID version now have
    to agree: about 3 random values in 65,536 pass."""
    rnd = random.Random(14)
    alarms = 0
    for _ in range(20000):
        v = base64.b64encode(rnd.randbytes(22 + 5 * rnd.randrange(4))).decode()
        alarms += "auth.hidden_time_after_date" in [
            i["code"] for i in timestamp_indicators([("Date", "Wed, 1 Mar 2017 10:00:00 +0000"), ("Thread-Index", v)])]
    assert alarms <= 2


def _legacy(start: datetime, guid=bytes.fromhex("eddd613c10594492ba6e574c70c89d50")) -> str:
    ft = int((start - datetime(1601, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1)) * 10
    return base64.b64encode((ft >> 16).to_bytes(6, "big") + guid).decode()


def test_implausible_times_are_recorded_not_compared():
    # a conversation start in 1990 (before Outlook and Exchange existed)
    v = _legacy(datetime(1990, 5, 1, tzinfo=timezone.utc))
    st = hidden_timestamps([("Thread-Index", v)])
    assert [(s["layout"], "1996-2053" in s["implausible"], "time" in s) for s in st] == [("legacy", True, False)]
    ind = timestamp_indicators([("Date", "Wed, 1 Mar 2017 10:00:00 +0000"), ("Thread-Index", v)])
    assert [i["code"] for i in ind] == ["auth.hidden_time_implausible"]
    # a time two days after the message was received
    v = _legacy(datetime(2017, 3, 3, 10, tzinfo=timezone.utc))
    rcv = datetime(2017, 3, 1, 10, 5, tzinfo=timezone.utc)
    st = hidden_timestamps([("Thread-Index", v)], received_at=rcv)
    assert st[0]["implausible"].startswith("after the message was received")
    ind = timestamp_indicators([("Date", "Wed, 1 Mar 2017 10:00:00 +0000"), ("Thread-Index", v)], st)
    assert [i["code"] for i in ind] == ["auth.hidden_time_implausible"]
    # the same index on a message received later: a Date set back two days
    st = hidden_timestamps([("Thread-Index", v)], received_at=rcv + timedelta(days=3))
    ind = timestamp_indicators([("Date", "Wed, 1 Mar 2017 10:00:00 +0000"), ("Thread-Index", v)], st)
    assert [i["code"] for i in ind] == ["auth.hidden_time_after_date"]


def test_an_implausible_date_is_not_the_ground_for_an_alarm():
    v, _d = REAL["exchange"][0]
    ind = timestamp_indicators([("Date", "Mon, 1 Jan 0001 10:00:00 +0000"), ("Thread-Index", v)])
    assert ind == []


def test_scan_records_the_layout_and_no_alarm(tmp_path):
    """The issue's case: Outlook 2010+ headers decoded to 2063 and raised the warning."""
    value, date = REAL["no-header-time"][0]
    data = msg(BASIC[0], BASIC[1], BASIC[2], b"Date: " + date.encode(), b"Thread-Index: " + value.encode())
    recs = scan_one(tmp_path, "o.eml", data)
    m = by_kind(recs, "message")[0]
    assert [(s["source"], s["layout"], s["time"][:16]) for s in m["hidden_timestamps"]] == [
        ("thread-index", "no-header-time", "2021-04-30T20:43")]
    assert not m.get("indicators")
