"""The passages where two texts differ (difflib, bounded).

differing_passages(a, b) -> {"change": "same" | "edited" | "appended" | "inserted" | "removed",
                             "passages": [{"a": "...", "b": "...", "a_offset": i, "b_offset": j}, ...],
                             "more": n, "truncated": bool}

Two levels, so that long documents stay cheap: the lines of both texts (as token sequences: white
space ignored) are aligned first, then the tokens (words and punctuation marks) of each block of
changed lines. When the lines do not line up (one text re-wrapped: a plain part against an HTML
rendering), the tokens of the whole texts are aligned instead. Each passage quotes both sides
around one difference, the changed tokens in [brackets], with CONTEXT tokens of context, cut to
MAX_CHARS characters per side; offsets are character offsets in the NFKC form of the text. At most
MAX_TOKENS tokens of a block are compared (difflib is quadratic in the worst case): `truncated`
says so.
"""
from __future__ import annotations

import difflib
import unicodedata
from typing import Dict, List, Tuple

from .text import token_spans

MAX_TOKENS = 5000
MAX_LINES = 50000
MAX_PASSAGES = 5
CONTEXT = 6
MAX_CHARS = 240

Span = Tuple[str, int, int]


def _quote(text: str, spans: List[Span], i: int, j: int, context: int) -> str:
    """Tokens i..j (exclusive) in [ ], with `context` tokens either side, as written in text."""
    n = len(spans)
    c0, c1 = max(0, i - context), min(n, j + context)
    if n == 0:
        return "[]"
    start = spans[c0][1] if c0 < n else len(text)
    end = spans[c1 - 1][2] if c1 > 0 else 0
    if i < j:
        a0, a1 = spans[i][1], spans[j - 1][2]
        s = text[start:a0] + "[" + text[a0:a1] + "]" + text[a1:max(end, a1)]
    else:
        at = spans[i][1] if i < n else (spans[-1][2] if spans else 0)
        s = text[min(start, at):at] + "[]" + text[at:max(end, at)]
    s = " ".join(s.split())
    if len(s) > MAX_CHARS:
        s = s[:MAX_CHARS - 1] + "…"
    return s


def _lines(text: str, spans: List[Span]) -> Tuple[List[str], List[int]]:
    """Token lines: the tokens of each line joined by spaces (blank lines dropped), and the index of
    each line's first token."""
    keys: List[str] = []
    first: List[int] = []
    line_no = -1
    cur: List[str] = []
    nl_positions = []
    pos = text.find("\n")
    while pos >= 0:
        nl_positions.append(pos)
        pos = text.find("\n", pos + 1)
    k = 0
    for idx, (tok, s, _) in enumerate(spans):
        while k < len(nl_positions) and nl_positions[k] < s:
            k += 1
        if k != line_no:
            if cur:
                keys.append(" ".join(cur))
            cur = []
            first.append(idx)
            line_no = k
        cur.append(tok)
    if cur:
        keys.append(" ".join(cur))
    return keys, first


def differing_passages(a: str, b: str, *, max_passages: int = MAX_PASSAGES, context: int = CONTEXT,
                       max_tokens: int = MAX_TOKENS) -> Dict[str, object]:
    a = unicodedata.normalize("NFKC", a or "")
    b = unicodedata.normalize("NFKC", b or "")
    sa, sb = token_spans(a), token_spans(b)
    la, fa = _lines(a, sa)
    lb, fb = _lines(b, sb)
    truncated = False
    # token ranges (i1, i2, j1, j2) of the blocks to align token by token
    blocks: List[Tuple[int, int, int, int]] = []
    line_ops = None
    if len(la) <= MAX_LINES and len(lb) <= MAX_LINES:
        sm = difflib.SequenceMatcher(None, la, lb, autojunk=False)
        equal = sum(size for _, _, size in sm.get_matching_blocks())
        if equal * 2 >= min(len(la), len(lb)):
            line_ops = sm.get_opcodes()
    if line_ops is not None:
        fa_end, fb_end = fa + [len(sa)], fb + [len(sb)]
        for tag, i1, i2, j1, j2 in line_ops:
            if tag != "equal":
                blocks.append((fa_end[i1], fa_end[i2], fb_end[j1], fb_end[j2]))
    else:
        blocks.append((0, len(sa), 0, len(sb)))
    ops: List[Tuple[str, int, int, int, int]] = []
    tags = set()
    unexamined = 0
    for n, (i1, i2, j1, j2) in enumerate(blocks):
        if len(ops) >= max_passages:        # enough passages: the other blocks are only counted
            unexamined += 1
            tags.add("delete" if j1 == j2 else "insert" if i1 == i2 else "replace")
            continue
        if i2 - i1 > max_tokens or j2 - j1 > max_tokens:
            truncated = True
        ta = [t for t, _, _ in sa[i1:min(i2, i1 + max_tokens)]]
        tb = [t for t, _, _ in sb[j1:min(j2, j1 + max_tokens)]]
        for tag, x1, x2, y1, y2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
            if tag != "equal":
                ops.append((tag, i1 + x1, i1 + x2, j1 + y1, j1 + y2))
                tags.add(tag)
    if not tags:
        change = "same"
    elif tags == {"insert"}:
        change = "appended" if len(ops) == 1 and not unexamined and ops[0][1] == len(sa) else "inserted"
    elif tags == {"delete"}:
        change = "removed"
    else:
        change = "edited"
    passages: List[dict] = []
    for tag, i1, i2, j1, j2 in ops[:max_passages]:
        passages.append({
            "a": _quote(a, sa, i1, i2, context),
            "b": _quote(b, sb, j1, j2, context),
            "a_offset": sa[i1][1] if i1 < len(sa) else len(a),
            "b_offset": sb[j1][1] if j1 < len(sb) else len(b),
        })
    out: Dict[str, object] = {"change": change, "passages": passages}
    if len(ops) + unexamined > max_passages:
        out["more"] = len(ops) + unexamined - max_passages
    if truncated:
        out["truncated"] = True
    return out
