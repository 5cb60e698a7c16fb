"""Threads (leaktriage.conversations.threads): JWZ, Outlook Thread-Index, the labelled subject fallback."""
import base64
import email
import email.policy
import json
import random

import pytest

from conftest import by_kind, corpus, scan_records
from leaktriage.conversations import build_threads, decode_thread_index, thread_index_parent, write_jsonl


def msg(loc, mid=None, irt=None, refs=None, subject="Budget", date="2017-03-01T10:00:00Z", frm="a@x.example",
        to=("b@x.example",), headers=(), custodian="alice", canonical=None):
    r = {"record": "message", "locator": loc, "subject": subject, "date": date, "custodian": custodian,
         "from": [{"address": frm, "name": ""}], "to": [{"address": t} for t in to],
         "canonical_sha256": canonical or ("%064x" % (abs(hash(loc)) % (1 << 200)))}
    if mid:
        r["message_id"] = mid
    if irt:
        r["in_reply_to"] = [irt]
    if refs:
        r["references"] = list(refs)
    if headers:
        r["headers"] = [{"name": n, "raw": v} for n, v in headers]
    return r


def by_loc(res):
    return {m.locator: m for m in res.members}


def test_chain_and_thread_ids_from_the_root():
    res = build_threads([
        msg("a", "<a@x>", date="2017-03-01T10:00:00Z"),
        msg("b", "<b@x>", irt="<a@x>", refs=["<a@x>"], subject="Re: Budget", date="2017-03-01T11:00:00Z"),
        msg("c", "<c@x>", irt="<b@x>", refs=["<a@x>", "<b@x>"], subject="RE : Budget", date="2017-03-01T12:00:00Z"),
        msg("z", "<z@x>", subject="Other", date="2017-03-02T10:00:00Z"),
    ])
    m = by_loc(res)
    assert m["a"].thread_id == m["b"].thread_id == m["c"].thread_id != m["z"].thread_id
    assert (m["a"].parent, m["a"].method, m["a"].depth) == (None, None, 0)
    assert (m["b"].parent, m["b"].parent_locator, m["b"].method, m["b"].depth) == ("<a@x>", "a", "references", 1)
    assert (m["c"].parent, m["c"].parent_locator, m["c"].depth) == ("<b@x>", "b", 2)
    t = {x.thread_id: x.record() for x in res.threads}[m["a"].thread_id]
    assert (t["root"], t["root_locator"], t["messages"], t["emails"], t["missing"], t["depth"]) == ("<a@x>", "a", 3, 3, 0, 2)
    assert t["subject"] == "Budget" and t["first_date"] == "2017-03-01T10:00:00Z" and t["last_date"] == "2017-03-01T12:00:00Z"
    # the id depends on the root only: a later reply does not change it
    res2 = build_threads([msg("a", "<a@x>"), msg("b", "<b@x>", irt="<a@x>", subject="Re: Budget")])
    assert by_loc(res2)["a"].thread_id == m["a"].thread_id


def test_in_reply_to_alone_and_in_reply_to_names_the_direct_parent():
    res = build_threads([
        msg("a", "<a@x>"), msg("b", "<b@x>", irt="<a@x>", date="2017-03-02T10:00:00Z"),
        # References that stop short of the parent: In-Reply-To is the direct parent
        msg("c", "<c@x>", irt="<b@x>", refs=["<a@x>"], date="2017-03-03T10:00:00Z"),
    ])
    m = by_loc(res)
    assert (m["b"].parent, m["b"].method) == ("<a@x>", "in-reply-to")
    assert (m["c"].parent, m["c"].method) == ("<b@x>", "references")


def test_missing_parents_are_recorded_and_siblings_share_the_thread():
    res = build_threads([
        msg("r1", "<r1@x>", irt="<gone@x>", refs=["<root@x>", "<gone@x>"], subject="Re: Plan"),
        msg("r2", "<r2@x>", irt="<gone@x>", refs=["<root@x>", "<gone@x>"], subject="Re: Plan", date="2017-03-02T10:00:00Z"),
        msg("o", "<o@x>", irt="<elsewhere@x>", subject="Re: Other"),
    ])
    m = by_loc(res)
    assert m["r1"].thread_id == m["r2"].thread_id != m["o"].thread_id
    assert (m["r1"].parent, m["r1"].parent_missing, m["r1"].parent_locator) == ("<gone@x>", True, None)
    t = {x.thread_id: x.record() for x in res.threads}[m["r1"].thread_id]
    assert t["root"] == "<root@x>" and t["root_missing"] is True and "root_locator" not in t
    assert t["missing"] == 2 and t["missing_ids"] == ["<gone@x>", "<root@x>"]
    assert res.stats["parent_missing"] == 3
    rec = m["r1"].record()
    assert rec["parent_missing"] is True and "parent_locator" not in rec


def test_cycles_in_references_are_refused():
    res = build_threads([
        msg("p", "<p@x>", refs=["<q@x>"], date="2017-03-01T10:00:00Z"),
        msg("q", "<q@x>", refs=["<p@x>"], date="2017-03-01T11:00:00Z"),      # would close a loop
        msg("s", "<s@x>", refs=["<s@x>"], date="2017-03-01T12:00:00Z"),      # refers to itself
        msg("t", "<t@x>", refs=["<u@x>", "<v@x>", "<u@x>"], irt="<v@x>", date="2017-03-01T13:00:00Z"),
    ])
    m = by_loc(res)
    assert m["p"].thread_id == m["q"].thread_id
    assert (m["p"].parent, m["q"].parent) == ("<q@x>", None)
    assert res.stats["loops_refused"] == 1
    assert (m["s"].parent, m["s"].depth) == (None, 0)
    assert (m["t"].parent, m["t"].parent_missing) == ("<v@x>", True)
    t = {x.thread_id: x.record() for x in res.threads}[m["t"].thread_id]
    assert t["missing_ids"] == ["<u@x>", "<v@x>"] and t["depth"] == 2


def test_duplicate_message_ids_copies_share_a_container_different_emails_do_not():
    res = build_threads([
        msg("alice/Sent/1", "<a@x>", custodian="alice"),
        msg("bob/Inbox/1", "<a@x>", custodian="bob"),
        msg("bob/Inbox/2", "<b@x>", irt="<a@x>", subject="Re: Budget", date="2017-03-02T10:00:00Z"),
        # a different email with the same id: another sender, subject and day
        msg("carol/Inbox/9", "<a@x>", subject="Lottery", frm="spam@y.example", date="2018-01-01T00:00:00Z"),
    ])
    m = by_loc(res)
    assert m["alice/Sent/1"].thread_id == m["bob/Inbox/1"].thread_id == m["bob/Inbox/2"].thread_id
    assert m["bob/Inbox/2"].parent_locator == "alice/Sent/1"
    assert m["carol/Inbox/9"].thread_id != m["alice/Sent/1"].thread_id
    assert res.stats["message_id_reused"] == 1 and res.stats["emails"] == 3
    t = {x.thread_id: x.record() for x in res.threads}[m["alice/Sent/1"].thread_id]
    assert (t["messages"], t["emails"], t["custodians"]) == (3, 2, ["alice", "bob"])


def test_message_id_less_mail_is_keyed_by_its_canonical_digest():
    d = "ab" * 32
    res = build_threads([msg("x/1", canonical=d), msg("y/1", canonical=d, custodian="bob"), msg("z/1", canonical="cd" * 32)])
    m = by_loc(res)
    assert m["x/1"].thread_id == m["y/1"].thread_id != m["z/1"].thread_id
    assert res.stats["without_message_id"] == 3
    t = {x.thread_id: x.record() for x in res.threads}[m["x/1"].thread_id]
    assert t["root"] == "canonical:" + d and t["emails"] == 1 and t["messages"] == 2


def test_subject_fallback_is_labelled_and_needs_a_reply_prefix_and_a_shared_participant():
    res = build_threads([
        msg("a", "<a@x>", subject="Réunion budget", frm="alice@x.example", to=("bob@x.example",)),
        msg("b", "<b@x>", subject="RE: Reunion  BUDGET", frm="bob@x.example", to=("alice@x.example",),
            date="2017-03-02T10:00:00Z"),
        # the same subject without a reply prefix: never merged
        msg("c", "<c@x>", subject="Réunion budget", frm="carl@y.example", to=("dan@y.example",),
            date="2017-03-03T10:00:00Z"),
        # a reply prefix but no participant in common with the earlier messages
        msg("d", "<d@x>", subject="Re: Réunion budget", frm="eve@z.example", to=("fred@z.example",),
            date="2017-03-04T10:00:00Z"),
        # too late: more than 90 days after
        msg("e", "<e@x>", subject="Re: Réunion budget", frm="bob@x.example", to=("alice@x.example",),
            date="2017-09-01T10:00:00Z"),
    ])
    m = by_loc(res)
    assert (m["b"].parent, m["b"].method, m["b"].thread_id) == ("<a@x>", "subject", m["a"].thread_id)
    assert len({m["a"].thread_id, m["c"].thread_id, m["d"].thread_id, m["e"].thread_id}) == 4
    assert res.stats["method.subject"] == 1
    assert {x.thread_id: x.record() for x in res.threads}[m["a"].thread_id]["methods"] == {"subject": 1}


def test_subject_fallback_never_overrides_headers():
    res = build_threads([
        msg("a", "<a@x>", subject="Budget", frm="alice@x.example", to=("bob@x.example",)),
        msg("b", "<b@x>", subject="Re: Budget", irt="<absent@x>", frm="bob@x.example", to=("alice@x.example",),
            date="2017-03-02T10:00:00Z"),
    ])
    m = by_loc(res)
    assert (m["b"].parent, m["b"].parent_missing, m["b"].method) == ("<absent@x>", True, "in-reply-to")
    assert m["a"].thread_id != m["b"].thread_id


def ti(raw):
    return base64.b64encode(raw).decode()


def test_thread_index_links_replies_without_references():
    root = bytes(range(1, 23))
    r1 = root + b"\x00\x01\x02\x03\x04"
    r2 = r1 + b"\x10\x11\x12\x13\x14"
    res = build_threads([
        msg("o/1", "<o1@x>", subject="Budget", headers=[("Thread-Index", ti(root)), ("Thread-Topic", "Budget")]),
        msg("o/2", "<o2@x>", subject="RE: Budget", headers=[("Thread-Index", ti(r1)), ("Thread-Topic", "Budget")],
            date="2017-03-02T10:00:00Z"),
        # its parent (r1 + 5 bytes) is not in the dump: an empty container for it, under r1's message
        msg("o/3", "<o3@x>", subject="RE: Budget", headers=[("Thread-Index", ti(r2 + b"\x20\x21\x22\x23\x24"))],
            date="2017-03-04T10:00:00Z"),
        # same conversation header, different topic: not linked
        msg("o/4", "<o4@x>", subject="RE: Autre chose",
            headers=[("Thread-Index", ti(root + b"\x05\x05\x05\x05\x05")), ("Thread-Topic", "Autre chose")],
            date="2017-03-05T10:00:00Z", frm="zed@q.example", to=("yan@q.example",)),
    ])
    m = by_loc(res)
    assert (m["o/2"].parent, m["o/2"].method, m["o/2"].parent_locator) == ("<o1@x>", "thread-index", "o/1")
    assert m["o/3"].thread_id == m["o/1"].thread_id
    assert (m["o/3"].parent, m["o/3"].parent_missing, m["o/3"].method) == ("thread-index:" + ti(r2), True, "thread-index")
    assert m["o/3"].depth == 3
    assert m["o/4"].thread_id != m["o/1"].thread_id and res.stats["thread_index_topic_mismatch"] == 1


def test_thread_index_of_real_outlook_headers():
    """Header values written by Outlook/Exchange (shared corpora): a conversation starter (22 bytes,
    cross-checked with the time decoder of leaktriage.auth.timestamps) and a reply eight blocks down
    (22 + 8 x 5 bytes)."""
    from leaktriage.auth.timestamps import thread_index_time
    starter = email.message_from_bytes(
        (corpus("dkim-real") / "hamcrest-mail" / "message-outlook.eml").read_bytes(), policy=email.policy.compat32)
    deep = email.message_from_bytes(
        (corpus("jstedfast-mimekit") / "UnitTests" / "TestData" / "messages" / "issue358.txt").read_bytes(),
        policy=email.policy.compat32)
    a = decode_thread_index(str(starter["Thread-Index"]))
    b = decode_thread_index(str(deep["Thread-Index"]))
    assert len(a) == 22 and thread_index_parent(a) is None and thread_index_time(str(starter["Thread-Index"]))[1] == 0
    assert len(b) == 62
    assert thread_index_parent(b) == b[:57] and b[0] == 1
    # the message it answers (its Thread-Index minus one block) is in the dump: the reply joins it,
    # even though this copy lost its References
    rec = {"locator": "deep", "message_id": str(deep["Message-ID"]).strip(), "subject": str(deep["Subject"]),
           "date": "2017-11-15T14:16:14Z", "headers": [{"name": "Thread-Index", "raw": str(deep["Thread-Index"])},
                                                        {"name": "Thread-Topic", "raw": str(deep["Thread-Topic"])}]}
    parent = {"locator": "parent", "message_id": "<p@x>", "subject": "R: R: I: FR-selca LA selcaE",
              "date": "2017-11-15T13:00:00Z",
              "headers": [{"name": "Thread-Index", "raw": base64.b64encode(b[:57]).decode()},
                          {"name": "Thread-Topic", "raw": "R: I: FR-selca LA selcaE"}]}
    m = by_loc(build_threads([rec, parent]))
    assert (m["deep"].parent, m["deep"].method) == ("<p@x>", "thread-index")


@pytest.mark.parametrize("value", [None, "", "not base64!", base64.b64encode(b"short").decode(),
                                   base64.b64encode(bytes(24)).decode(), "A" * 5000])
def test_bad_thread_index_values_are_ignored(value):
    assert decode_thread_index(value) is None


def test_hostile_records_do_not_break_threading():
    recs = [{"locator": "h/1", "message_id": 5, "references": "nope", "in_reply_to": [None, 3], "subject": ["x"],
             "date": "yesterday", "from": "me", "headers": "x"},
            {"locator": "h/2", "message_id": "<" + "a" * 10000 + ">", "references": ["<r%d@x>" % i for i in range(5000)]},
            {"locator": "h/3"}]
    res = build_threads(recs)
    assert len(res.members) == 3
    deep = by_loc(res)["h/2"]
    assert deep.depth == 100 and deep.parent == "<r4999@x>"      # the last 100 references are kept


def test_output_does_not_depend_on_input_order():
    recs = [msg("m%02d" % i, "<%d@x>" % i, irt="<%d@x>" % (i // 2) if i else None,
                date="2017-03-%02dT10:00:00Z" % (1 + i % 20)) for i in range(30)]
    recs.append(msg("dup", "<3@x>", custodian="bob", date="2017-03-04T10:00:00Z"))
    import io
    outs = []
    for seed in (1, 2, 3):
        random.Random(seed).shuffle(recs)
        buf = io.StringIO()
        write_jsonl(build_threads(recs).records(), buf)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2]
    lines = [json.loads(l) for l in outs[0].splitlines()]
    assert {l["record"] for l in lines} == {"thread", "thread_member"}


def test_threads_of_scanned_messages(tmp_path):
    """From real scanner output: three messages of one conversation in two mailboxes, the reply's
    References folded over two lines, and one message without a Message-ID."""
    dump = tmp_path / "dump"
    (dump / "alice" / "Sent").mkdir(parents=True)
    (dump / "bob" / "Inbox").mkdir(parents=True)
    (dump / "alice" / "Sent" / "1.eml").write_bytes(
        b"From: Alice <alice@x.example>\r\nTo: bob@x.example\r\nSubject: Budget\r\nMessage-ID: <1@x.example>\r\n"
        b"Date: Wed, 1 Mar 2017 10:00:00 +0100\r\n\r\nHello\r\n")
    (dump / "bob" / "Inbox" / "1.eml").write_bytes(
        b"From: Alice <alice@x.example>\r\nTo: bob@x.example\r\nSubject: Budget\r\nMessage-ID: <1@x.example>\r\n"
        b"Date: Wed, 1 Mar 2017 10:00:00 +0100\r\nReceived: from a by b; Wed, 1 Mar 2017 10:00:01 +0100\r\n\r\nHello\r\n")
    (dump / "alice" / "Sent" / "2.eml").write_bytes(
        b"From: Alice <alice@x.example>\r\nTo: bob@x.example\r\nSubject: Re: Budget\r\nMessage-ID: <3@x.example>\r\n"
        b"In-Reply-To: <2@x.example>\r\nReferences: <1@x.example>\r\n <2@x.example>\r\n"
        b"Date: Thu, 2 Mar 2017 10:00:00 +0100\r\n\r\nSee below\r\n")
    (dump / "bob" / "Inbox" / "2.eml").write_bytes(
        b"From: Carl <carl@y.example>\r\nTo: bob@x.example\r\nSubject: No id\r\nDate: Thu, 2 Mar 2017 11:00:00 +0100\r\n\r\nx\r\n")
    recs, _, _ = scan_records(dump, tmp_path)
    res = build_threads(by_kind(recs, "message"))
    m = by_loc(res)
    assert m["alice/Sent/1.eml"].thread_id == m["bob/Inbox/1.eml"].thread_id == m["alice/Sent/2.eml"].thread_id
    assert (m["alice/Sent/2.eml"].parent, m["alice/Sent/2.eml"].parent_missing) == ("<2@x.example>", True)
    assert m["bob/Inbox/2.eml"].thread_id not in {m["alice/Sent/1.eml"].thread_id}
    t = {x.thread_id: x.record() for x in res.threads}[m["alice/Sent/1.eml"].thread_id]
    assert (t["messages"], t["emails"], t["missing_ids"], t["custodians"]) == (3, 2, ["<2@x.example>"], ["alice", "bob"])


@pytest.mark.parametrize("subject,base,reply", [
    ("RE : Réunion budget", "reunion budget", True), ("AW: Re: [liste] Budget", "budget", True),
    ("Re[2]: Budget", "budget", True), ("TR: Fwd: Budget", "budget", False), ("R: R: I: FR-selca", "fr-selca", True),
    ("Réunion  budget", "reunion budget", False), ("Résumé: le budget", "resume: le budget", False),
    ("[Liste] Ordre du jour", "ordre du jour", False), ("Re:", "", True), (None, "", False)])
def test_subject_bases(subject, base, reply):
    from leaktriage.conversations.text import is_reply_subject, subject_base
    assert subject_base(subject) == base and is_reply_subject(subject) is reply
