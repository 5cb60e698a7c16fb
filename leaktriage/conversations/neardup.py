"""Near-duplicates of message bodies and of attachment text: MinHash (datasketch), LSH banding,
exact verification, and the passages that differ.

    docs = [Doc(message_locator, "body", body_text), Doc(part_locator, "attachment", text, key=sha256), ...]
    result = near_duplicates(docs, workers=2)      # thresholds: THRESHOLDS, or threshold=0.6 / {"body": 0.8}
    result.groups       # one dict per group of near-duplicate texts, sorted by group id

How. Each text is reduced to its words (runs of \\w in the lower-cased text); a message body to the
part its author wrote (text.own_text: the quoted reply and forwarded text are someone else's).
Texts with the same words (or, for attachments, the same SHA-256) are one *unique text*: exact
duplicates stay as they are, listed together as the members of that text. Unique texts of at least
`min_words` words get a MinHash of their word `shingle`-grams (datasketch.MinHash, `num_perm`
permutations, scheme affine32, fixed `seed`). Candidate pairs come from LSH banding of the
signatures with datasketch's optimal (bands, rows) for `threshold - 2 x margin` (so that a pair at
the threshold becomes a candidate with probability 0.99 or more: at the threshold itself, datasketch's
choice catches only 55-87 %), done over a numpy
matrix (datasketch's in-memory MinHashLSH index took 505 MiB for 60,000 texts; the matrix takes
30 MiB), pairs whose estimated similarity reaches threshold - margin are verified on the texts, and
a pair is kept when the exact Jaccard similarity of the two shingle sets reaches `threshold` (by
default 0.5 for attachment texts and 0.7 for bodies, where form letters and notices of one template
reach 0.5-0.7; see docs/conversations.md for the measurements).
Groups are the connected components of the kept pairs; each group lists the links of its maximum
spanning tree (the most similar pairs that connect it) with the similarity and the differing
passages (passages.differing_passages). Only body texts are compared with body texts and attachment
texts with attachment texts.

Memory: texts go to a temporary SQLite file (compressed) as they stream in; RAM holds the
signatures (4 x num_perm bytes per unique text) and the lists of ids. Deterministic: the same
groups, similarities and passages whatever the worker count and on every run.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import zlib
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .passages import differing_passages
from .text import fingerprint, own_text

KINDS = ("body", "attachment")
BUCKET_CAP = 64          # an LSH bucket larger than this pairs each text with its next WINDOW texts only
WINDOW = 8
CHUNK = 128              # texts per batch sent to a worker
MAX_TEXT_CHARS = 2_000_000
CACHE_BYTES = 16 << 20   # shingle-hash arrays kept for verification
_WORD = re.compile(r"\w+")


class Doc(NamedTuple):
    id: str                      # message locator (body) or part locator (attachment)
    kind: str                    # "body" or "attachment"
    text: str
    key: Optional[str] = None    # exact-duplicate key (attachments: the SHA-256 of the file)


@dataclass
class NearDupResult:
    groups: List[dict]
    pairs: List[Tuple[str, str, str, float]]            # (kind, key a, key b, similarity), verified
    members: Dict[str, Tuple[str, List[str], int]]      # key -> (kind, ids, words)
    stats: Dict[str, int] = field(default_factory=dict)

    def records(self) -> Iterable[dict]:
        return iter(self.groups)

    def groups_at(self, threshold: float) -> List[dict]:
        """Groups of the verified pairs at a higher threshold (members only: no links, no passages)."""
        uf: Dict[str, str] = {}

        def find(x):
            uf.setdefault(x, x)
            while uf[x] != x:
                uf[x] = uf[uf[x]]
                x = uf[x]
            return x
        for kind, a, b, s in self.pairs:
            if s >= threshold:
                ra, rb = find(a), find(b)
                if ra != rb:
                    uf[max(ra, rb)] = min(ra, rb)
        comp: Dict[str, List[str]] = defaultdict(list)
        for k in uf:
            comp[find(k)].append(k)
        out = []
        for keys in comp.values():
            if len(keys) < 2:
                continue
            keys.sort()
            kind = self.members[keys[0]][0]
            out.append({"kind": kind, "members": [{"key": k, "ids": self.members[k][1], "words": self.members[k][2]}
                                                  for k in keys]})
        out.sort(key=lambda g: g["members"][0]["key"])
        return out


# --------------------------------------------------------------------------------------------
# per-text work (also in worker processes)

def _words(doc: Doc) -> List[str]:
    text = doc.text[:MAX_TEXT_CHARS] if isinstance(doc.text, str) else ""
    if doc.kind == "body":
        text = own_text(text)
    return _WORD.findall(text.lower())


_P = 0x01000193            # FNV prime: shingle hash = polynomial of the word hashes, mod 2**32


def shingle_hashes(words: Sequence[str], k: int):
    """Sorted unique 32-bit hashes of the word k-shingles (CRC-32 of each word, combined as a
    polynomial mod 2**32): deterministic in every process, unlike Python's hash()."""
    import numpy as np
    if not words:
        return np.zeros(0, dtype=np.uint32)
    crc = {w: zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in set(words)}
    wh = np.fromiter(map(crc.__getitem__, words), dtype=np.uint32, count=len(words))
    if len(words) < k:
        k = len(words)
    n = len(words) - k + 1
    h = np.zeros(n, dtype=np.uint32)
    p = np.uint32(_P)
    for j in range(k):
        h = h * p + wh[j:j + n]
    return np.unique(h)


def _signature(hashes, num_perm: int, seed: int) -> bytes:
    """datasketch MinHash (scheme affine32, fixed seed) of already hashed shingles."""
    from datasketch import MinHash
    proto = _MH.get((num_perm, seed))
    if proto is None:
        proto = _MH[(num_perm, seed)] = MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
    m = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=int, permutations=proto.permutations)
    for i in range(0, len(hashes), 8192):      # update_batch holds a (batch x num_perm) matrix
        m.update_batch(hashes[i:i + 8192].tolist())
    return m.hashvalues.astype("<u4").tobytes()


_MH: Dict[tuple, object] = {}


def _prepare(args) -> List[tuple]:
    docs, shingle, num_perm, seed, min_words = args
    out = []
    for d in docs:
        w = _words(d)
        key = d.key or fingerprint(w)
        sig = _signature(shingle_hashes(w, shingle), num_perm, seed) if len(w) >= min_words else None
        out.append((key, len(w), sig))
    return out


def _chunks(docs: Iterable[Doc], n: int) -> Iterator[List[Doc]]:
    buf: List[Doc] = []
    for d in docs:
        if d.kind not in KINDS:
            raise ValueError("Doc kind must be one of %s, not %r" % (", ".join(KINDS), d.kind))
        buf.append(d)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


# --------------------------------------------------------------------------------------------

def lsh_params(threshold: float, num_perm: int) -> Tuple[int, int]:
    """(bands, rows) that datasketch chooses for this threshold (false positives and negatives
    weighted equally)."""
    from datasketch import MinHashLSH
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def _candidates(sig, b: int, r: int):
    """Candidate pairs (i < j) from LSH banding of the signature matrix (n x num_perm uint32), as a
    sorted numpy array of codes i * n + j (8 bytes a pair)."""
    import numpy as np
    from array import array
    n = sig.shape[0]
    codes = array("q")
    mult = np.uint64(0x100000001B3)
    for band in range(b):
        cols = sig[:, band * r:(band + 1) * r].astype(np.uint64)
        h = np.full(n, np.uint64(0xCBF29CE484222325), dtype=np.uint64)
        for j in range(cols.shape[1]):
            h = (h ^ cols[:, j]) * mult
        order = np.argsort(h, kind="stable")
        hs = h[order]
        cut = np.flatnonzero(hs[1:] != hs[:-1]) + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [n]))
        multi = np.flatnonzero(ends - starts >= 2)
        for s, e in zip(starts[multi].tolist(), ends[multi].tolist()):
            run = sorted(order[s:e].tolist())
            width = len(run) if len(run) <= BUCKET_CAP else WINDOW + 1
            for x in range(len(run)):
                base = run[x] * n
                for y in range(x + 1, min(len(run), x + width)):
                    codes.append(base + run[y])
        if len(codes) > (1 << 22):          # keep the buffer small: fold duplicates as we go
            codes = array("q", np.unique(np.frombuffer(codes, dtype=np.int64)).tobytes())
    return np.unique(np.frombuffer(codes, dtype=np.int64))


class _Store:
    """Unique texts in a temporary SQLite file, compressed; shingle sets cached."""

    def __init__(self, scratch_dir: Optional[str]):
        self.dir = tempfile.mkdtemp(prefix="leaktriage-neardup-", dir=scratch_dir)
        self.db = sqlite3.connect(os.path.join(self.dir, "texts.db"))
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, z BLOB)")
        self.cache: "OrderedDict[int, object]" = OrderedDict()
        self.cached = 0

    def put(self, i: int, text: str) -> None:
        self.db.execute("INSERT INTO t VALUES (?, ?)", (i, zlib.compress(text.encode("utf-8", "surrogatepass"), 1)))

    def text(self, i: int) -> str:
        row = self.db.execute("SELECT z FROM t WHERE i = ?", (i,)).fetchone()
        return zlib.decompress(row[0]).decode("utf-8", "surrogatepass")

    def shingle_set(self, i: int, k: int, kind: str):
        got = self.cache.get(i)
        if got is not None:
            self.cache.move_to_end(i)
            return got
        s = shingle_hashes(_words(Doc("", kind, self.text(i))), k)
        self.cache[i] = s
        self.cached += s.nbytes
        while self.cached > CACHE_BYTES and len(self.cache) > 1:
            self.cached -= self.cache.popitem(last=False)[1].nbytes
        return s

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _prepared(docs: Iterable[Doc], shingle: int, num_perm: int, seed: int, min_words: int,
              workers: int) -> Iterator[Tuple[Doc, tuple]]:
    """(doc, (key, words, signature)) in input order. With workers, a bounded window of batches is
    in flight (Pool.imap would read the whole input ahead, texts and all); an input of a few
    batches is done here (starting workers costs more)."""
    args = (shingle, num_perm, seed, min_words)
    chunks = _chunks(docs, CHUNK)
    ahead: List[List[Doc]] = []
    if workers > 1:
        for c in chunks:
            ahead.append(c)
            if len(ahead) > 2 * workers:
                break
    if workers <= 1 or len(ahead) <= 2 * workers:
        for c in ahead:
            yield from zip(c, _prepare((c,) + args))
        for c in chunks:
            yield from zip(c, _prepare((c,) + args))
        return
    import multiprocessing
    from collections import deque
    # spawned, not forked: a worker does not inherit (and, through reference counts, copy) the
    # memory of a large caller such as the index builder
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending: deque = deque((c, pool.apply_async(_prepare, ((c,) + args,))) for c in ahead)
        for c in chunks:
            c0, r0 = pending.popleft()
            pending.append((c, pool.apply_async(_prepare, ((c,) + args,))))
            yield from zip(c0, r0.get())
        while pending:
            c0, r0 = pending.popleft()
            yield from zip(c0, r0.get())


THRESHOLDS = {"attachment": 0.5, "body": 0.7}


def near_duplicates(docs: Iterable[Doc], *, threshold=None, shingle: int = 5, num_perm: int = 128,
                    seed: int = 1, min_words: int = 20, margin: float = 0.1, workers: int = 1,
                    scratch_dir: Optional[str] = None, max_passages: int = 5) -> NearDupResult:
    """Groups of near-duplicate texts (see the module documentation). threshold: one Jaccard
    similarity for both kinds, or {"body": .., "attachment": ..}; default THRESHOLDS (chosen on
    generated dumps, see docs/conversations.md)."""
    import numpy as np
    if threshold is None:
        thr = dict(THRESHOLDS)
    elif isinstance(threshold, dict):
        thr = dict(THRESHOLDS, **threshold)
    else:
        thr = {k: threshold for k in KINDS}
    if set(thr) != set(KINDS) or not all(isinstance(v, (int, float)) and 0.0 < v <= 1.0 for v in thr.values()):
        raise ValueError("threshold must be in (0, 1], for the kinds %s" % ", ".join(KINDS))
    store = _Store(scratch_dir)
    try:
        keys: List[str] = []                     # unique text -> its key
        kinds: List[str] = []
        nwords: List[int] = []
        ids: List[List[str]] = []
        where: Dict[Tuple[str, str], int] = {}   # (kind, key) -> unique text
        sigs: Dict[str, List[bytes]] = {k: [] for k in KINDS}
        rows: Dict[str, List[int]] = {k: [] for k in KINDS}
        stats: Dict[str, int] = defaultdict(int)
        for d, (key, nw, sig) in _prepared(docs, shingle, num_perm, seed, min_words, workers):
            stats["docs"] += 1
            u = where.get((d.kind, key))
            if u is not None:
                ids[u].append(d.id)
                continue
            u = where[(d.kind, key)] = len(keys)
            keys.append(key)
            kinds.append(d.kind)
            nwords.append(nw)
            ids.append([d.id])
            if sig is None:
                stats["too_short"] += 1
                continue
            text = d.text[:MAX_TEXT_CHARS] if isinstance(d.text, str) else ""
            store.put(u, own_text(text) if d.kind == "body" else text)
            sigs[d.kind].append(sig)
            rows[d.kind].append(u)
        stats["unique"] = len(keys)
        store.db.commit()

        pairs: List[Tuple[int, int, float]] = []
        for kind in KINDS:
            if len(rows[kind]) < 2:
                continue
            threshold = thr[kind]
            b, r = lsh_params(max(0.05, threshold - 2 * margin), num_perm)
            sig = np.frombuffer(b"".join(sigs[kind]), dtype="<u4").reshape(len(rows[kind]), num_perm)
            sigs[kind] = []
            cand = _candidates(sig, b, r)
            stats["candidates_" + kind] = len(cand)
            kept = []
            n_rows = sig.shape[0]
            for s0 in range(0, len(cand), 65536):
                ci, cj = np.divmod(cand[s0:s0 + 65536], n_rows)
                est = (sig[ci] == sig[cj]).mean(axis=1)
                ok = est >= threshold - margin
                kept.extend(zip(ci[ok].tolist(), cj[ok].tolist()))
            stats["estimated_" + kind] = len(kept)
            idx = rows[kind]
            for i, j in kept:
                ui, uj = idx[i], idx[j]
                si, sj = store.shingle_set(ui, shingle, kind), store.shingle_set(uj, shingle, kind)
                inter = len(np.intersect1d(si, sj, assume_unique=True))
                union = len(si) + len(sj) - inter
                sim = inter / union if union else 0.0
                if sim >= threshold:
                    pairs.append((ui, uj, round(sim, 4)))
        stats["pairs"] = len(pairs)

        groups = _groups(pairs, keys, kinds, nwords, ids, store, thr, shingle, max_passages)
        involved = sorted({u for p in pairs for u in p[:2]})
        members = {keys[u]: (kinds[u], sorted(ids[u]), nwords[u]) for u in involved}
        out_pairs = sorted((kinds[i], min(keys[i], keys[j]), max(keys[i], keys[j]), s) for i, j, s in pairs)
        stats["groups"] = len(groups)
        return NearDupResult(groups=groups, pairs=out_pairs, members=members, stats=dict(sorted(stats.items())))
    finally:
        store.close()


def _groups(pairs, keys, kinds, nwords, ids, store, thr, shingle, max_passages) -> List[dict]:
    parent: Dict[int, int] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for i, j, _ in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    comp: Dict[int, List[int]] = defaultdict(list)
    for u in parent:
        comp[find(u)].append(u)
    by_comp: Dict[int, List[Tuple[int, int, float]]] = defaultdict(list)
    for p in pairs:
        by_comp[find(p[0])].append(p)
    out = []
    for root, us in comp.items():
        kind = kinds[root]
        # maximum spanning tree (Kruskal: most similar first, ties by keys)
        edges = sorted(by_comp[root], key=lambda p: (-p[2], min(keys[p[0]], keys[p[1]]), max(keys[p[0]], keys[p[1]])))
        tree: Dict[int, int] = {u: u for u in us}

        def tfind(x):
            while tree[x] != x:
                tree[x] = tree[tree[x]]
                x = tree[x]
            return x
        links = []
        for i, j, sim in edges:
            ri, rj = tfind(i), tfind(j)
            if ri == rj:
                continue
            tree[max(ri, rj)] = min(ri, rj)
            a, b = (i, j) if (keys[i], ids[i][0]) <= (keys[j], ids[j][0]) else (j, i)
            link = {"a": keys[a], "b": keys[b], "a_id": min(ids[a]), "b_id": min(ids[b]), "similarity": sim}
            diff = differing_passages(store.text(a), store.text(b), max_passages=max_passages)
            link["change"] = diff["change"]
            link["passages"] = diff["passages"]
            for k in ("more", "truncated"):
                if k in diff:
                    link[k] = diff[k]
            links.append(link)
        links.sort(key=lambda l: (l["a"], l["b"]))
        mem = sorted(({"key": keys[u], "ids": sorted(ids[u]), "words": nwords[u]} for u in us),
                     key=lambda m: (m["ids"][0], m["key"]))
        gid = "n" + hashlib.sha256((kind + "\x00" + "\x00".join(sorted(m["key"] for m in mem)))
                                   .encode("utf-8", "surrogatepass")).hexdigest()[:20]
        sims = [l["similarity"] for l in links]
        out.append({"record": "near_duplicate_group", "group": gid, "kind": kind, "threshold": thr[kind],
                    "measure": "Jaccard similarity of word %d-shingles" % shingle,
                    "similarity_min": min(sims), "similarity_max": max(sims), "members": mem, "links": links})
    out.sort(key=lambda g: g["group"])
    return out
