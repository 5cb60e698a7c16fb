"""The search query language, compiled to SQL over the index (leaktriage.search.build).

    query   = or
    or      = and *( "OR" and )
    and     = unary *( ["AND"] unary )          ; juxtaposition means AND
    unary   = ("NOT" / "-") unary / primary
    primary = "(" query ")" / field ":" value / phrase / word
    value   = word / phrase / range             ; phrase = double-quoted text
    word    = text, with a trailing "*" for a prefix search

Free text and phrases search subject, names and addresses, body, attachment names and attachment
text, folded (case, accents, ligatures: leaktriage.text.fold). Fields:

    from: to: cc:      names or addresses (to: covers To, Cc and Bcc); a full address or @domain
                       matches exactly
    subject:           words or a phrase in the Subject
    filename:          words of attachment names        type:  pdf, docx, jpeg, ... or a MIME type
    attachment:        words in the text (or names) of attachments
    in:                attachment, body, subject: the free words of the whole query are searched there only
    text:              what text extraction gave for an attachment: ok, partial, empty, failed, unsupported,
                       none (a document without text), ocr (needs OCR), scan (PDF without text layer), encrypted
    risk:              executable, script, macro, any, disguised (an attachment that can run code)
    date:              2017, 2017-03, 2017-03-05, 2017-03..2017-04, ..2017-04, 2017-03..
    has:               attachment, problem, finding, dkim, text, risk
    sha256:            message (stored, un-quoted or canonical) or attachment digest
    dkim:              a message summary (pass, fail, none, pass-weak-key, expired, no-key, unverifiable) or
                       a signature verdict (body-hash-mismatch, signature-mismatch, malformed, ...)
    mailbox: custodian:  substring of the mailbox / custodian (folded)
    finding: problem:  code (auth.dkim_body_hash_mismatch; a family without a dot: problem:base64; a trailing * matches a prefix)
    id:                Message-ID
    sphere:            personal, work, unknown (the private sphere of the message: leaktriage.privacy)
    sensitive:         health, finances, family, intimate, legal, any (sensitive topics of the message)
    pii:               iban, nir, card, phone, dob, address, passport, email, any (validated personal data)
    thread:            a thread id (t + 20 hex digits: `leaktriage show --thread`, the threads table)
    corroborated:      yes (identical copies held by two custodians or more), no (every other message)
    near:              yes, body, attachment: in a near-duplicate group (of bodies, of attachment texts), or no

compile_query(text) -> Compiled(where, params, fts, terms); parse errors raise QueryError with the
character position. Only the standard library is imported here (the search start-up is budgeted).
"""
from __future__ import annotations

import re

from leaktriage.text.fold import ELIDED_WORD, fold

# the private sphere (issue #17; tables privacy and pii, written by leaktriage.search.privacy_analysis)
PRIVACY_FIELDS = ("sphere", "sensitive", "pii")
PRIVACY_VALUES = {"sphere": ("personal", "work", "unknown"),
                  "sensitive": ("health", "finances", "family", "intimate", "legal", "any"),
                  "pii": ("iban", "nir", "card", "phone", "dob", "address", "passport", "email", "any")}
FIELDS = ("from", "to", "cc", "subject", "date", "has", "filename", "type", "sha256", "dkim", "mailbox",
          "custodian", "finding", "problem", "id", "body", "attachment", "in", "text", "risk", "thread",
          "corroborated", "near") + PRIVACY_FIELDS
HAS_VALUES = ("attachment", "problem", "finding", "dkim", "text", "risk")
# in:X restricts the free words of the whole query to these FTS columns
SCOPES = {"attachment": "{attachment_names attachment_text}", "attachments": "{attachment_names attachment_text}",
          "body": "body", "subject": "subject"}
# text:X - what text extraction gave for an attachment (attachments.text_status / text_codes)
TEXT_VALUES = ("ok", "partial", "empty", "failed", "unsupported", "none", "ocr", "scan", "encrypted")
RISK_VALUES = ("executable", "script", "macro", "any", "disguised")
NEAR_VALUES = ("yes", "no", "body", "attachment")
# every word the manifest uses for DKIM: the message summary (dkim_summary) and the verdict of each
# signature (auth.dkimverify.VERDICTS; tests/test_search_query.py checks both lists), and "none"
DKIM_SUMMARIES = ("pass", "pass-weak-key", "fail", "expired", "no-key", "unverifiable")
DKIM_SIGNATURE_VERDICTS = ("pass", "pass-weak-key", "body-hash-mismatch", "signature-mismatch", "no-key",
                           "expired", "malformed", "unsupported-algorithm")
DKIM_VALUES = tuple(dict.fromkeys(DKIM_SUMMARIES + DKIM_SIGNATURE_VERDICTS + ("none",)))
MAX_DEPTH = 100     # nested parentheses and NOTs: deeper is refused (no recursion limit is ever reached)


class QueryError(ValueError):
    def __init__(self, message: str, position: int, query: str = ""):
        super().__init__(message)
        self.message = message
        self.position = position
        self.query = query

    def __str__(self):
        return "%s (at position %d)" % (self.message, self.position + 1)

    def pointer(self) -> str:
        """The query with a caret under the error position."""
        return "  %s\n  %s^" % (self.query, " " * self.position)


# --------------------------------------------------------------------------------------------
# Tokens

class Tok:
    """A token: kind is "(" ")" AND OR NOT WORD PHRASE FIELD."""

    __slots__ = ("kind", "value", "pos", "field", "quoted", "prefix")

    def __init__(self, kind: str, value: str, pos: int, field: str | None = None, quoted: bool = False,
                 prefix: bool = False):
        self.kind, self.value, self.pos, self.field, self.quoted, self.prefix = kind, value, pos, field, quoted, prefix


_OPS = {"AND": "AND", "OR": "OR", "NOT": "NOT"}


def tokenize(q: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(q)
    while i < n:
        c = q[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            toks.append(Tok(c, c, i))
            i += 1
            continue
        if c == "-" and i + 1 < n and not q[i + 1].isspace() and q[i + 1] not in ")":
            toks.append(Tok("NOT", "-", i))
            i += 1
            continue
        start = i
        if c == '"':
            val, i = _quoted(q, i)
            prefix = i < n and q[i] == "*"
            if prefix:
                i += 1
            toks.append(Tok("PHRASE", val, start, quoted=True, prefix=prefix))
            continue
        # a bare word, possibly field:value or field:"quoted value"
        j = i
        while j < n and not q[j].isspace() and q[j] not in '()"':
            if q[j] == ":" and j > i:
                break
            j += 1
        if j < n and q[j] == ":" and j > i:
            name = q[i:j].lower()
            if name in FIELDS:
                k = j + 1
                if k < n and q[k] == '"':
                    val, k = _quoted(q, k)
                    prefix = k < n and q[k] == "*"
                    if prefix:
                        k += 1
                    toks.append(Tok("FIELD", val, start, field=name, quoted=True, prefix=prefix))
                else:
                    e = k
                    while e < n and not q[e].isspace() and q[e] not in '()':
                        e += 1
                    val = q[k:e]
                    if not val:
                        raise QueryError("%s: needs a value" % name, start, q)
                    prefix = val.endswith("*")
                    toks.append(Tok("FIELD", val[:-1] if prefix else val, start, field=name, prefix=prefix))
                    k = e
                i = k
                continue
            if re.fullmatch(r"[A-Za-z_]+", q[i:j]) and q[j + 1:j + 3] != "//":
                raise QueryError("unknown field %r (known: %s)" % (q[i:j] + ":", ", ".join(f + ":" for f in FIELDS)),
                                 start, q)
            # "12:30" or "http://..." - just text: continue the word through the colon
            while j < n and not q[j].isspace() and q[j] not in '()"':
                j += 1
        word = q[i:j]
        i = j
        if word in _OPS:
            toks.append(Tok(_OPS[word], word, start))
            continue
        prefix = word.endswith("*")
        toks.append(Tok("WORD", word[:-1] if prefix else word, start, prefix=prefix))
    return toks


def _quoted(q: str, i: int) -> tuple[str, int]:
    j = q.find('"', i + 1)
    if j < 0:
        raise QueryError("unclosed quote", i, q)
    return q[i + 1:j], j + 1


# --------------------------------------------------------------------------------------------
# Syntax tree

class Node:
    """op is AND, OR, NOT or TERM (a leaf holding a token)."""

    __slots__ = ("op", "children", "tok")

    def __init__(self, op: str, children: list["Node"] | None = None, tok: Tok | None = None):
        self.op, self.children, self.tok = op, children or [], tok


class _Parser:
    def __init__(self, q: str):
        self.q = q
        self.toks = tokenize(q)
        self.i = 0
        self.depth = 0

    def deeper(self, t: Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError("query nested too deeply (more than %d levels of parentheses and NOT)" % MAX_DEPTH,
                             t.pos, self.q)

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> Node:
        if not self.toks:
            raise QueryError("empty query", 0, self.q)
        node = self.parse_or()
        t = self.peek()
        if t is not None:
            if t.kind == ")":
                raise QueryError("unmatched ')'", t.pos, self.q)
            raise QueryError("unexpected %r" % t.value, t.pos, self.q)
        return node

    def parse_or(self) -> Node:
        kids = [self.parse_and()]
        while self.peek() is not None and self.peek().kind == "OR":
            t = self.take()
            if self.peek() is None or self.peek().kind in (")", "OR", "AND"):
                raise QueryError("OR needs something on its right", t.pos, self.q)
            kids.append(self.parse_and())
        return kids[0] if len(kids) == 1 else Node("OR", kids)

    def parse_and(self) -> Node:
        kids = [self.parse_unary()]
        while True:
            t = self.peek()
            if t is None or t.kind in (")", "OR"):
                break
            if t.kind == "AND":
                self.take()
                nt = self.peek()
                if nt is None or nt.kind in (")", "OR", "AND"):
                    raise QueryError("AND needs something on its right", t.pos, self.q)
            kids.append(self.parse_unary())
        return kids[0] if len(kids) == 1 else Node("AND", kids)

    def parse_unary(self) -> Node:
        t = self.peek()
        if t is None:
            raise QueryError("query ends too early", len(self.q), self.q)
        if t.kind == "NOT":
            self.take()
            nt = self.peek()
            if nt is None or nt.kind in (")", "OR", "AND"):
                raise QueryError("%s needs something on its right" % t.value, t.pos, self.q)
            self.deeper(t)
            node = Node("NOT", [self.parse_unary()])
            self.depth -= 1
            return node
        if t.kind == "(":
            self.take()
            if self.peek() is not None and self.peek().kind == ")":
                raise QueryError("empty parentheses", t.pos, self.q)
            self.deeper(t)
            node = self.parse_or()
            c = self.peek()
            if c is None or c.kind != ")":
                raise QueryError("unclosed '('", t.pos, self.q)
            self.take()
            self.depth -= 1
            return node
        if t.kind in ("AND", "OR"):
            raise QueryError("%s needs something on its left" % t.value, t.pos, self.q)
        if t.kind == ")":
            raise QueryError("unmatched ')'", t.pos, self.q)
        self.take()
        return Node("TERM", tok=t)


def parse(q: str) -> Node:
    return _Parser(q).parse()


# --------------------------------------------------------------------------------------------
# Compilation

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class Compiled:
    """where/params: SQL condition on messages m; fts: the FTS expression used for ranking (None
    without free text); terms: folded words to highlight, as (word, is_prefix)."""

    __slots__ = ("where", "params", "fts", "terms", "date_range")

    def __init__(self, where: str, params: list, fts: str | None, terms: list[tuple[str, bool]],
                 date_range: tuple[str | None, str | None] = (None, None)):
        self.where, self.params, self.fts, self.terms = where, params, fts, terms
        # [lo, hi) that every hit's date lies in, from date: terms ANDed at the top level (the
        # search can then walk only that part of the date index); (None, None) when unbounded
        self.date_range = date_range


class _Part:
    """Either a pure full-text expression (fts) or an SQL condition on messages m (sql, params)."""

    __slots__ = ("fts", "sql", "params")

    def __init__(self, fts: str | None = None, sql: str | None = None, params: list | None = None):
        self.fts, self.sql, self.params = fts, sql, params or []


class _Compiler:
    def __init__(self, q: str, scope: str | None = None):
        self.q = q
        self.terms: list[tuple[str, bool]] = []
        self.scope = scope      # FTS column filter of the free words (in:)

    # leaves ------------------------------------------------------------------------------
    def fts_string(self, text: str, prefix: bool, tok: Tok, highlight: bool = True) -> str:
        folded = fold(text)
        words = _TOKEN.findall(folded)
        if not words:
            raise QueryError("nothing to search for in %r" % (tok.value or text), tok.pos, self.q)
        if highlight:
            for k, w in enumerate(words):
                self.terms.append((w, prefix and k == len(words) - 1))
        s = _phrase(words, prefix)
        if "'" in folded:
            # "N'Diaye" is also written "NDiaye": the index holds the joined spelling too (fold.index_text)
            joined = _TOKEN.findall(ELIDED_WORD.sub(lambda m: m.group(0).replace("'", ""), folded))
            if joined != words:
                s = "(%s OR %s)" % (s, _phrase(joined, prefix))
        return s

    def leaf(self, tok: Tok, negated: bool = False) -> _Part:
        if tok.kind in ("WORD", "PHRASE"):
            fts = self.fts_string(tok.value, tok.prefix, tok, not negated)
            return _Part(fts="%s : %s" % (self.scope, fts) if self.scope else fts)
        f, v = tok.field, tok.value.strip()
        if not v:
            raise QueryError("%s: needs a value" % f, tok.pos, self.q)
        h = not negated
        if f == "subject":
            return _Part(fts="subject : " + self.fts_string(v, tok.prefix, tok, h))
        if f == "body":
            return _Part(fts="body : " + self.fts_string(v, tok.prefix, tok, h))
        if f == "filename":
            return _Part(fts="attachment_names : " + self.fts_string(v, tok.prefix, tok, h))
        if f == "attachment":
            return _Part(fts=SCOPES["attachment"] + " : " + self.fts_string(v, tok.prefix, tok, h))
        if f == "text":
            lv = v.lower()
            if lv not in TEXT_VALUES:
                raise QueryError("text:%s is not known (use %s)" % (v, ", ".join("text:" + x for x in TEXT_VALUES)),
                                 tok.pos, self.q)
            return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE %s)" % TEXT_SQL[lv])
        if f == "risk":
            lv = v.lower()
            if lv not in RISK_VALUES:
                raise QueryError("risk:%s is not known (use %s)" % (v, ", ".join("risk:" + x for x in RISK_VALUES)),
                                 tok.pos, self.q)
            if lv == "any":
                return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE risk IS NOT NULL)")
            if lv == "disguised":
                return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE %s)" % disguised_sql())
            return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE risk = ?)", params=[lv])
        if f in ("from", "to", "cc"):
            roles = {"from": ("from", "sender"), "to": ("to", "cc", "bcc"), "cc": ("cc", "bcc")}[f]
            cols = {"from": "from_text", "to": "{to_text cc_text}", "cc": "cc_text"}[f]
            low = v.lower()
            rl = ",".join("'%s'" % r for r in roles)
            if not tok.prefix and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", low):
                return _Part(sql="m.id IN (SELECT message_id FROM addresses WHERE address = ? AND role IN (%s))" % rl,
                             params=[low])
            if not tok.prefix and re.fullmatch(r"@[^@\s]+", low):
                return _Part(sql="m.id IN (SELECT message_id FROM addresses WHERE domain = ? AND role IN (%s))" % rl,
                             params=[low[1:]])
            return _Part(fts="%s : %s" % (cols, self.fts_string(v, tok.prefix, tok, h)))
        if f == "date":
            lo, hi = _date_range(v, tok, self.q)
            conds, params = [], []
            if lo:
                conds.append("date >= ?")
                params.append(lo)
            if hi:
                conds.append("date < ?")
                params.append(hi)
            return _Part(sql=_msel(" AND ".join(conds)), params=params)
        if f == "has":
            lv = v.lower()
            if lv in ("attachment", "attachments"):
                return _Part(sql=_msel("attachment_count > 0"))
            if lv in ("problem", "problems"):
                return _Part(sql="m.id IN (SELECT message_id FROM problems WHERE message_id IS NOT NULL)")
            if lv in ("finding", "findings"):
                return _Part(sql="m.id IN (SELECT message_id FROM findings WHERE kind IN ('indicator', 'mailbox'))")
            if lv == "dkim":
                return _Part(sql="m.id IN (SELECT message_id FROM findings WHERE kind = 'dkim')")
            if lv == "text":
                return _Part(sql=_msel("text_status = 'ok' AND body != ''"))
            if lv == "risk":
                return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE risk IS NOT NULL)")
            raise QueryError("has:%s is not known (use %s)" % (v, ", ".join("has:" + x for x in HAS_VALUES)),
                             tok.pos, self.q)
        if f == "type":
            lv = v.lower().lstrip(".")
            lv = {"jpg": "jpeg", "tif": "tiff", "htm": "html"}.get(lv, lv)
            # every condition below reads one (column, message_id) index, never the table
            if tok.prefix:
                lo, hi = _prefix_range(lv)
                return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE type >= ? AND type < ? "
                                 "UNION SELECT message_id FROM attachments WHERE magic >= ? AND magic < ?)",
                             params=[lo, hi, lo, hi])
            if "/" in lv:    # a MIME type: what libmagic found or what the sender declared
                return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE magic = ? "
                                 "UNION SELECT message_id FROM attachments WHERE content_type = ?)", params=[lv] * 2)
            return _Part(sql="m.id IN (SELECT message_id FROM attachments WHERE type = ? "
                             "UNION SELECT message_id FROM attachments WHERE extension = ?)", params=[lv] * 2)
        if f == "sha256":
            lv = v.lower()
            if not re.fullmatch(r"[0-9a-f]+", lv) or (len(lv) != 64 and not tok.prefix):
                if re.fullmatch(r"[0-9a-f]{8,63}", lv):
                    raise QueryError("sha256: needs 64 hex digits (or a prefix with *, e.g. sha256:%s*)" % lv[:12],
                                     tok.pos, self.q)
                raise QueryError("sha256: needs 64 hex digits", tok.pos, self.q)
            if tok.prefix:
                if len(lv) < 6:
                    raise QueryError("sha256: prefix needs at least 6 hex digits", tok.pos, self.q)
                hi = lv + "g"
                return _Part(sql="(" + _msel("sha256 >= ? AND sha256 < ? OR canonical_sha256 >= ? AND canonical_sha256 < ?"
                                             " OR unquoted_sha256 >= ? AND unquoted_sha256 < ?")
                                 + " OR m.id IN (SELECT message_id FROM attachments WHERE sha256 >= ? AND sha256 < ?))",
                             params=[lv, hi] * 4)
            return _Part(sql="(" + _msel("sha256 = ? OR canonical_sha256 = ? OR unquoted_sha256 = ?")
                             + " OR m.id IN (SELECT message_id FROM attachments WHERE sha256 = ?))", params=[lv] * 4)
        if f == "dkim":
            lv = v.lower()
            if lv not in DKIM_VALUES:
                raise QueryError("dkim:%s is not a verdict (use %s)" % (v, ", ".join(DKIM_VALUES)), tok.pos, self.q)
            if lv == "none":
                return _Part(sql=_msel("dkim IS NULL OR dkim = 'none'"))
            if lv == "pass":  # the summary is "pass" exactly when some signature passes: one index
                return _Part(sql=_msel("dkim = ?"), params=[lv])
            return _Part(sql="(" + _msel("dkim = ?") + " OR m.id IN (SELECT message_id FROM findings WHERE kind = 'dkim' "
                             "AND code = ?))", params=[lv, lv])
        if f in ("mailbox", "custodian"):
            col = "mailbox" if f == "mailbox" else "custodian"
            pat = "%" + _like(fold(v)).replace("*", "%") + "%"
            return _Part(sql=_msel("%s IN (SELECT v FROM (SELECT DISTINCT %s AS v FROM messages LIMIT -1) WHERE fold(v) LIKE ? "
                                   "ESCAPE '\\')" % (col, col)), params=[pat])
        if f in ("finding", "problem"):
            table = "findings" if f == "finding" else "problems"
            lv = v.lower()  # codes are lower case
            if tok.prefix:  # a range on the (code, message_id) index rather than LIKE, which scans
                lo, hi = _prefix_range(lv)
                return _Part(sql="m.id IN (SELECT message_id FROM %s WHERE code >= ? AND code < ?)" % table,
                             params=[lo, hi])
            if "." not in lv:   # a family (finding:base64, problem:zip), as export --finding takes it
                lo, hi = _prefix_range(lv + ".")
                return _Part(sql="m.id IN (SELECT message_id FROM %s WHERE code = ? OR (code >= ? AND code < ?))"
                             % table, params=[lv, lo, hi])
            return _Part(sql="m.id IN (SELECT message_id FROM %s WHERE code = ?)" % table, params=[lv])
        if f in PRIVACY_FIELDS:
            return _Part(*privacy_sql(f, v.lower(), tok, self.q))
        if f in ("thread", "corroborated", "near"):
            return self.conversation(f, v, tok)
        if f == "id":
            mid = v if v.startswith("<") else "<%s>" % v
            return _Part(sql=_msel("header_message_id = ?"), params=[mid])
        raise QueryError("unknown field %s:" % f, tok.pos, self.q)  # pragma: no cover

    def conversation(self, f: str, v: str, tok: Tok) -> _Part:
        """thread:ID, corroborated:yes|no, near:yes|no|body|attachment (leaktriage.search.conversation_passes)."""
        lv = v.lower()
        if f == "thread":
            if not re.fullmatch(r"t[0-9a-f]{20}", lv):
                raise QueryError("thread: needs a thread id (t and 20 hex digits, as `leaktriage show --thread` "
                                 "prints it)", tok.pos, self.q)
            return _Part(sql=_msel("thread_id = ?"), params=[lv])
        if f == "corroborated":
            if lv not in ("yes", "no"):
                raise QueryError("corroborated:%s is not known (use corroborated:yes or corroborated:no)" % v,
                                 tok.pos, self.q)
            sub = "m.id IN (SELECT message_id FROM findings WHERE code = 'copy.corroborated' AND kind = 'copy')"
            return _Part(sql=sub if lv == "yes" else "NOT " + sub)
        if lv not in NEAR_VALUES:
            raise QueryError("near:%s is not known (use %s)" % (v, ", ".join("near:" + x for x in NEAR_VALUES)),
                             tok.pos, self.q)
        if lv in ("body", "attachment"):
            return _Part(sql="m.id IN (SELECT message_id FROM near_duplicates WHERE kind = ?)", params=[lv])
        sub = "m.id IN (SELECT message_id FROM near_duplicates)"
        return _Part(sql=sub if lv == "yes" else "NOT " + sub)

    # tree --------------------------------------------------------------------------------
    def node(self, n: Node, negated: bool = False) -> _Part:
        if n.op == "TERM":
            return self.leaf(n.tok, negated)
        if n.op == "NOT":
            inner = self.node(n.children[0], not negated)
            isql, iparams = _as_sql(inner)
            return _Part(sql="NOT coalesce(%s, 0)" % isql, params=iparams)
        kids = [self.node(c, negated) for c in n.children]
        if n.op == "OR":
            if all(k.fts for k in kids):
                return _Part(fts="(" + " OR ".join(k.fts for k in kids) + ")")
            sqls = [_as_sql(k) for k in kids]
            return _Part(sql="(" + " OR ".join(s for s, _ in sqls) + ")", params=[p for _, ps in sqls for p in ps])
        # AND: the positive full-text children become one FTS expression, negated full-text
        # children join it with FTS5's NOT, everything else is SQL
        pos_fts = [k.fts for k in kids if k.fts]
        neg_fts, sql = [], []
        for c, k in zip(n.children, kids):
            if k.fts:
                continue
            if c.op == "NOT" and pos_fts:
                inner = self.node(c.children[0], True)
                if inner.fts:
                    neg_fts.append(inner.fts)
                    continue
            sql.append(k)
        fts = None
        if pos_fts:
            fts = " AND ".join(pos_fts)
            if neg_fts:
                fts = "(" + fts + ")" + "".join(" NOT " + x for x in neg_fts)
            if len(pos_fts) > 1 or neg_fts:
                fts = "(" + fts + ")"
        if not sql:
            return _Part(fts=fts)
        parts = ([_fts_sql(fts)] if fts else []) + [_as_sql(k) for k in sql]
        return _Part(sql="(" + " AND ".join(s for s, _ in parts) + ")", params=[p for _, ps in parts for p in ps])


def privacy_sql(f: str, v: str, tok: Tok, q: str) -> tuple:
    """(None, sql, params) of a sphere: / sensitive: / pii: term (an index built without the privacy
    analyses has no such tables: the engine says so)."""
    if v not in PRIVACY_VALUES[f]:
        raise QueryError("%s:%s is not known (use %s)" % (f, v, ", ".join(f + ":" + x for x in PRIVACY_VALUES[f])),
                         tok.pos, q)
    if f == "sphere":
        return None, "m.id IN (SELECT message_id FROM privacy WHERE sphere = ?)", [v]
    if f == "sensitive":
        if v == "any":
            return None, "m.id IN (SELECT message_id FROM privacy WHERE sensitive LIKE '[\"%')", []
        return None, "m.id IN (SELECT message_id FROM privacy WHERE sensitive LIKE ?)", ['%%"%s"%%' % v]
    if v == "any":
        return None, "m.id IN (SELECT message_id FROM pii)", []
    return None, "m.id IN (SELECT message_id FROM pii WHERE kind = ?)", [v]


_OCR = ("text.no_text_layer", "text.partial_text_layer", "text.needs_ocr")
TEXT_SQL = {
    "ok": "text_status = 'ok'", "partial": "text_status = 'partial'", "empty": "text_status = 'empty'",
    "failed": "text_status = 'failed'", "unsupported": "text_status = 'unsupported'",
    # a document (a format whose text is read) that gave none
    "none": "text_status IN ('empty', 'failed')",
    "ocr": " OR ".join("' ' || text_codes || ' ' LIKE '%% %s %%'" % c for c in _OCR),
    "scan": " OR ".join("' ' || text_codes || ' ' LIKE '%% %s %%'" % c for c in _OCR[:2]),
    "encrypted": "' ' || text_codes || ' ' LIKE '% text.encrypted %'",
}


def disguised_sql(table: str = "") -> str:
    """An attachment that can run code and whose name (or declared type) says otherwise (manifest.danger);
    table: the attachments table's alias in a join ("a.")."""
    from leaktriage.manifest.danger import NATURAL_EXTENSIONS
    t = table
    conds = []
    for kind, exts in sorted(NATURAL_EXTENSIONS.items()):
        conds.append("%srisk = '%s' AND coalesce(%sextension, '') NOT IN (%s)"
                     % (t, kind, t, ", ".join("'%s'" % e for e in sorted(exts))))
    return "%srisk IS NOT NULL AND (%smismatch IS NOT NULL OR %s)" % (t, t, " OR ".join("(%s)" % c for c in conds))


def _phrase(words: list[str], prefix: bool) -> str:
    s = '"%s"' % " ".join(words)
    return s + " *" if prefix else s


def _msel(cond: str) -> str:
    """A condition on messages columns, as a set of ids (evaluated on an index, not on the wide rows)."""
    return "m.id IN (SELECT id FROM messages WHERE %s)" % cond


def _prefix_range(prefix: str) -> tuple[str, str]:
    """[lo, hi) holding exactly the strings that start with prefix (binary collation)."""
    if not prefix:
        return "", "\U0010ffff"
    return prefix, prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))


def _like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_sql(fts: str) -> tuple[str, list]:
    return "m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)", [fts]


def _as_sql(p: _Part) -> tuple[str, list]:
    if p.fts is not None:
        return _fts_sql(p.fts)
    return p.sql, p.params


_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def _date_bound(s: str, end: bool, tok: Tok, q: str) -> str:
    m = _DATE.match(s)
    if not m:
        raise QueryError("bad date %r (use YYYY, YYYY-MM or YYYY-MM-DD, and A..B for a range)" % s, tok.pos, q)
    y, mo, d = int(m.group(1)), m.group(2), m.group(3)
    mo = int(mo) if mo else None
    d = int(d) if d else None
    if mo is not None and not 1 <= mo <= 12 or d is not None and not 1 <= d <= 31:
        raise QueryError("bad date %r" % s, tok.pos, q)
    if d is not None:
        import datetime
        try:
            day = datetime.date(y, mo, d)
        except ValueError:
            raise QueryError("bad date %r" % s, tok.pos, q)
        if end:
            day += datetime.timedelta(days=1)
        return day.isoformat()
    if mo is not None:
        if end:
            y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
        return "%04d-%02d-01" % (y, mo)
    return "%04d-01-01" % (y + 1 if end else y)


def _date_range(v: str, tok: Tok, q: str) -> tuple[str | None, str | None]:
    if ".." in v:
        a, _, b = v.partition("..")
        if not a and not b:
            raise QueryError("date: range needs at least one end", tok.pos, q)
        lo = _date_bound(a, False, tok, q) if a else None
        hi = _date_bound(b, True, tok, q) if b else None
        if lo and hi and lo >= hi:
            raise QueryError("date: range %s ends before it starts" % v, tok.pos, q)
        return lo, hi
    return _date_bound(v, False, tok, q), _date_bound(v, True, tok, q)


def _top_date_range(tree: Node, q: str) -> tuple[str | None, str | None]:
    kids = tree.children if tree.op == "AND" else [tree]
    lo = hi = None
    for k in kids:
        if k.op == "TERM" and k.tok.kind == "FIELD" and k.tok.field == "date" and k.tok.value.strip():
            a, b = _date_range(k.tok.value.strip(), k.tok, q)
            if a and (lo is None or a > lo):
                lo = a
            if b and (hi is None or b < hi):
                hi = b
    return lo, hi


def _take_scope(tree: Node, q: str) -> tuple[Node, str | None]:
    """Remove the in: terms of a query (they must be ANDed at its top level) and return the FTS column
    filter they ask for."""
    kids = tree.children if tree.op == "AND" else [tree]
    cols: list[str] = []
    keep = []
    for k in kids:
        if k.op == "TERM" and k.tok.kind == "FIELD" and k.tok.field == "in":
            v = k.tok.value.strip().lower()
            if v not in SCOPES:
                raise QueryError("in:%s is not known (use %s)" % (v, ", ".join("in:" + x for x in ("attachment", "body", "subject"))),
                                 k.tok.pos, q)
            for c in SCOPES[v].strip("{}").split():
                if c not in cols:
                    cols.append(c)
        else:
            keep.append(k)
    stack = list(keep)
    while stack:
        n = stack.pop()
        if n.op == "TERM":
            if n.tok.kind == "FIELD" and n.tok.field == "in":
                raise QueryError("in: applies to the whole query: put it at the top level (in:attachment facture), "
                                 "not under OR or NOT", n.tok.pos, q)
        else:
            stack.extend(n.children)
    if not cols:
        return tree, None
    if not keep:
        raise QueryError("in: says where to look for words: give some (in:attachment facture)", 0, q)
    tree = keep[0] if len(keep) == 1 else Node("AND", keep)
    return tree, cols[0] if len(cols) == 1 else "{%s}" % " ".join(cols)


def compile_query(q: str) -> Compiled:
    tree, scope = _take_scope(parse(q), q)
    c = _Compiler(q, scope)
    part = c.node(tree)
    if part.fts is not None:
        where, params = _fts_sql(part.fts)
        return Compiled(where, params, part.fts, c.terms)
    dates = _top_date_range(tree, q)
    # rank by the top-level positive full-text expression when there is one
    rank_fts = None
    if tree.op == "AND":
        kids = [c2 for c2 in tree.children]
        fts_kids = []
        sub = _Compiler(q, scope)
        for k in kids:
            p = sub.node(k)
            if p.fts:
                fts_kids.append(p.fts)
        if fts_kids:
            rank_fts = " AND ".join(fts_kids)
    return Compiled(part.sql, part.params, rank_fts, c.terms, dates)
