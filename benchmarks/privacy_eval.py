#!/usr/bin/env python3
"""Evaluation of leaktriage.privacy against the generator's ground truth.

    python benchmarks/privacy_eval.py --dump DIR [--dump DIR2 ...] [--examples] [--json OUT] [--write-doc MD]
    python benchmarks/privacy_eval.py --generate OUT_DIR --messages 2000 [--vocab FILE] [--seed N]
    python benchmarks/privacy_eval.py --train WEIGHTS.json --dump DIR [--dump DIR2 ...]

A dump made with `make_dump.py --personal 0.25` (optionally `--vocab FILE`) is read through its
leaktriage manifest (`leaktriage scan` is run when no manifest is given): each message's bytes are
fetched through its locator (checked against the manifest's SHA-256) and parsed with the standard
library's email package; the subject, the body text (text/plain, or text/html turned into text) and
the text of the attachments (.txt/.csv/.ics/.vcf/.html, DOCX, PDF with pypdfium2) go to the library.
Images are not read (no OCR), so PII the truth places in an image attachment is not counted.

It prints: sphere accuracy (with the confusion matrix), personal data per kind judged per message
(recall of the messages holding planted values of that kind, precision of the messages flagged for
that kind, messages flagged for a kind of which they hold only decoys), per-category topic
precision/recall (per message, against the truth's `sensitive`), and the time per message.
--write-doc puts the table between the privacy-eval markers of docs/privacy.md. --train fits the
sphere model's weights on the dumps (deterministic; see docs/privacy.md, "How the model was
trained"). The generator is found through $LEAKTRIAGE_BENCH (its folder), beside the shared corpora
($LEAKTRIAGE_CORPORA/../bench) or in ../shared/bench.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from leaktriage import privacy  # noqa: E402
from leaktriage.privacy import PII_KINDS, TOPIC_CATEGORIES  # noqa: E402

# ---------------------------------------------------------------------------------------------------
# Finding the generator


def find_generator() -> Path:
    """make_dump.py: in $LEAKTRIAGE_BENCH, else beside the shared corpora ($LEAKTRIAGE_CORPORA/../bench),
    else in ../shared/bench next to the repository."""
    cands = []
    if os.environ.get("LEAKTRIAGE_BENCH"):
        cands.append(Path(os.environ["LEAKTRIAGE_BENCH"]) / "make_dump.py")
    if os.environ.get("LEAKTRIAGE_CORPORA"):
        cands.append(Path(os.environ["LEAKTRIAGE_CORPORA"]).parent / "bench" / "make_dump.py")
    cands.append(HERE.parent.parent / "shared" / "bench" / "make_dump.py")
    for c in cands:
        if c.is_file():
            return c
    raise SystemExit("make_dump.py not found (set LEAKTRIAGE_BENCH to its folder, or LEAKTRIAGE_CORPORA)")


def generate(out: Path, messages: int, seed: int, vocab: Optional[Path], personal: float = 0.25) -> Path:
    """Run the generator (no signing, small attachments) and scan the dump; returns the manifest."""
    cmd = [sys.executable, str(find_generator()), str(out), "--messages", str(messages), "--seed", str(seed),
           "--personal", str(personal), "--attachment-scale", "0.02", "--no-sign", "--quiet", "--force"]
    if vocab:
        cmd += ["--vocab", str(vocab)]
    subprocess.run(cmd, check=True)
    return scan(out)


def scan(dump: Path) -> Path:
    manifest = dump.parent / (dump.name + ".jsonl")
    subprocess.run([sys.executable, "-m", "leaktriage", "scan", str(dump), "-o", str(manifest), "--quiet",
                    "--workers", "1"], check=True, stdout=subprocess.DEVNULL)
    return manifest


# ---------------------------------------------------------------------------------------------------
# Message bytes through the manifest's locators


class Fetcher:
    """Bytes of a message from its locator: plain files, zip members (nested too) and mbox slices are
    read here with caches; anything else goes through leaktriage's own resolver."""

    def __init__(self, dump: Path):
        self.dump = Path(dump)
        self._zips: Dict[Tuple[str, ...], zipfile.ZipFile] = {}
        self._files: Dict[str, bytes] = {}

    def _file(self, rel: bytes) -> bytes:
        key = rel.decode("utf-8", "surrogateescape")
        if key not in self._files:
            if len(self._files) > 8:
                self._files.clear()
            self._files[key] = (self.dump / os.fsdecode(rel)).read_bytes()
        return self._files[key]

    def _zip(self, chain: Tuple[bytes, ...]) -> zipfile.ZipFile:
        key = tuple(c.decode("utf-8", "surrogateescape") for c in chain)
        z = self._zips.get(key)
        if z is None:
            if len(chain) == 1:
                z = zipfile.ZipFile(self.dump / os.fsdecode(chain[0]))
            else:
                z = zipfile.ZipFile(io.BytesIO(self._member(chain)))
            self._zips[key] = z
        return z

    def _member(self, chain: Tuple[bytes, ...]) -> bytes:
        z = self._zip(chain[:-1])
        return z.read(chain[-1].decode("utf-8", "surrogateescape"))

    def message(self, rec: dict) -> bytes:
        loc = rec["locator"]
        data = None
        if "#" not in loc:
            pieces = loc.split("!")
            raw = [unquote_to_bytes(pieces[0])]
            kinds = [p.split(":", 1) for p in pieces[1:]]
            if not kinds:
                data = self._file(raw[0])
            elif all(k == "zip" for k, _ in kinds):
                data = self._member(tuple(raw + [unquote_to_bytes(v) for _, v in kinds]))
            elif len(kinds) == 1 and kinds[0][0] == "mbox" and "offset" in rec:
                whole = self._file(raw[0])
                data = whole[rec["offset"]:rec["offset"] + rec["length"]]
        if data is None:
            # the one use of leaktriage internals here (before / after the package restructure)
            try:
                from leaktriage.manifest.resolver import resolve
            except ImportError:
                from leaktriage.resolve import resolve
            data = resolve(str(self.dump), loc)
        if hashlib.sha256(data).hexdigest() != rec["sha256"]:
            raise ValueError("bytes at %s do not match the manifest" % loc)
        return data


# ---------------------------------------------------------------------------------------------------
# Text with the email package


class _Html(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "blockquote", "pre", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: List[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_text(html: str) -> str:
    p = _Html()
    p.feed(html)
    p.close()
    return re.sub(r"[ \t\u00a0]+", " ", "".join(p.out))


_MOJIBAKE = re.compile("[\u00c3\u00c2\u00c5][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u02c6\u02dc\u2013-\u203a\u20ac\u2122]")


def repair_mojibake(text: str) -> str:
    """UTF-8 read as Windows-1252 or Latin-1 ('nÃ© le' for 'né le': a mislabelled part the scan
    decoded with its declared charset) read back as UTF-8, when the whole text allows it."""
    if not _MOJIBAKE.search(text):
        return text
    for cs in ("cp1252", "latin-1"):
        try:
            return text.encode(cs).decode("utf-8")
        except UnicodeError:
            continue
    return text


def _decode(part, charset: Optional[str]) -> str:
    """A text part decoded with the charset the scan chose for it (the manifest's part record says
    which: declared, detected or fallback), else the declared one."""
    payload = part.get_payload(decode=True) or b""
    for cs in (charset, part.get_content_charset(), "utf-8"):
        if not cs:
            continue
        try:
            return repair_mojibake(payload.decode(cs, "replace"))
        except LookupError:
            continue
    return payload.decode("utf-8", "replace")


_DOCX_RX = re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>|<w:(?:p|br|tab)\b[^>]*/?>")


def _text_bytes(data: bytes) -> str:
    """An attached text file: UTF-8 when it decodes as such, else Windows-1252 (its usual other)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def pdf_text(data: bytes) -> Optional[str]:
    """Text of a PDF with pypdfium2 (a leaktriage dependency), else pypdf when installed, else None."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        pdfium = None
    if pdfium is not None:
        doc = pdfium.PdfDocument(data)
        try:
            out = []
            for i in range(min(len(doc), 50)):
                tp = doc[i].get_textpage()
                out.append(tp.get_text_range())
            return "\n".join(out)
        finally:
            doc.close()
    try:
        import logging
        import pypdf
    except ImportError:
        return None
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    rd = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join((p.extract_text() or "") for p in rd.pages[:50])


def attachment_text(name: str, ctype: str, data: bytes) -> Optional[str]:
    """Text of an attachment, or None when it is not read (images, unknown types, damaged files)."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    try:
        if ext in ("txt", "csv", "ics", "vcf", "md") or ctype in ("text/plain", "text/csv", "text/calendar"):
            return _text_bytes(data)
        if ext in ("html", "htm") or ctype == "text/html":
            return html_text(_text_bytes(data))
        if ext == "docx":
            import html as _h
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                xml = z.read("word/document.xml")
            return "".join(_h.unescape(m.group(1).decode("utf-8", "replace")) if m.group(1) is not None else "\n"
                           for m in _DOCX_RX.finditer(xml))
        if ext == "pdf" or ctype == "application/pdf":
            return pdf_text(data)
    except Exception:  # noqa: BLE001 - a damaged attachment has no text
        return None
    return None


def _walk(part, path: str):
    """(MIME path, leaf part) in entity order, attached messages included (their root entity is P.1)."""
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        for i, sub in enumerate(part.get_payload(), 1):
            yield from _walk(sub, "%s.%d" % (path, i))
    elif part.is_multipart():
        for i, sub in enumerate(part.get_payload(), 1):
            yield from _walk(sub, "%s.%d" % (path, i))
    else:
        yield path, part


def message_texts(raw: bytes, charsets: Optional[Dict[str, str]] = None) -> dict:
    """{'subject', 'body', 'attachments': [(name, text)]} of one message (attached messages included).
    `charsets` maps MIME paths to the charset the scan used for that part."""
    charsets = charsets or {}
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        subject = str(msg.get("subject") or "")
    except Exception:  # noqa: BLE001
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        subject = str(msg.get("subject") or "")
    plain: List[str] = []
    htmls: List[str] = []
    atts: List[Tuple[str, str]] = []
    for path, part in _walk(msg, "1"):
        try:
            name = part.get_filename()
        except Exception:  # noqa: BLE001
            name = None
        ctype = part.get_content_type()
        disp = (part.get("content-disposition") or "").split(";")[0].strip().lower()
        if name or disp == "attachment":
            t = attachment_text(name or "", ctype, part.get_payload(decode=True) or b"")
            if t:
                atts.append((name or "", t))
        elif ctype == "text/plain":
            plain.append(_decode(part, charsets.get(path)))
        elif ctype == "text/html":
            htmls.append(html_text(_decode(part, charsets.get(path))))
    body = "\n\n".join(plain) if plain else "\n\n".join(htmls)
    return {"subject": subject, "body": body, "attachments": atts}


def read_manifest(path: Path) -> Tuple[List[dict], Dict[str, Dict[str, str]]]:
    """The message records, and for each message locator {MIME path: charset used by the scan}."""
    msgs = []
    charsets: Dict[str, Dict[str, str]] = defaultdict(dict)
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            kind = r.get("record")
            if kind == "message":
                msgs.append(r)
            elif kind == "part" and r.get("charset"):
                top = r["locator"].split("#", 1)[0]
                charsets[top][r["locator"].split("#", 1)[1].split("!")[0]] = r["charset"]
    return msgs, charsets


def iter_messages(dump: Path, records: List[dict], charsets: Dict[str, Dict[str, str]]
                  ) -> Iterator[Tuple[dict, Optional[dict]]]:
    """(manifest record, texts or None) for every stored top-level message (attached messages are
    read inside the message that holds them)."""
    fetch = Fetcher(dump)
    for rec in records:
        if rec.get("source") == "rfc822" or "#" in rec["locator"]:
            continue
        try:
            texts = message_texts(fetch.message(rec), charsets.get(rec["locator"]))
        except Exception as exc:  # noqa: BLE001
            texts = None
            print("cannot read %s: %s" % (rec["locator"], exc), file=sys.stderr)
        yield rec, texts


# ---------------------------------------------------------------------------------------------------
# Ground truth


def _loc_escape(s: str) -> str:
    return re.sub(r"[%!#\x00-\x1f\x7f]", lambda m: "%%%02X" % ord(m.group(0)), s)


def truth_locator(t: dict) -> Optional[str]:
    """The manifest locator of a truth item, from its location."""
    loc = t.get("location") or {}
    path = _loc_escape(loc.get("path", ""))
    kind = loc.get("container")
    if kind == "file":
        return path
    if kind == "zip":
        return "!".join([path] + ["zip:" + _loc_escape(m) for m in loc.get("members", [])])
    if kind == "mbox":
        return "%s@%d" % (path, loc["offset"])      # matched on the manifest's offset (read_truth)
    return None


def read_truth(path: Path, records: List[dict]) -> Dict[str, dict]:
    """{manifest locator: truth item}; an mbox item is matched on its mbox path and the byte offset of
    its first header line, which the manifest records as `offset`."""
    mbox_at = {}
    for r in records:
        if "!mbox:" in r["locator"] and r["locator"].count("!") == 1 and "offset" in r:
            mbox_at["%s@%d" % (r["locator"].split("!", 1)[0], r["offset"])] = r["locator"]
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            loc = truth_locator(t)
            loc = mbox_at.get(loc, loc) if loc else None
            if loc:
                out[loc] = t
    return out


# ---------------------------------------------------------------------------------------------------
# Running the library over a dump


def summary(rec: dict) -> dict:
    """The message summary the library reads (fields of the manifest's message record)."""
    return {k: rec.get(k) for k in ("locator", "custodian", "mailbox", "from", "sender", "to", "cc", "bcc",
                                    "subject", "date", "attachment_names")}


def load_dump(dump: Path, manifest: Optional[Path] = None, truth: Optional[Path] = None, *,
              limit: Optional[int] = None) -> Tuple[List[dict], dict]:
    """[{'rec', 'truth', 'analysis'}] for the dump's messages that the truth describes, and timings."""
    manifest = manifest or dump.parent / (dump.name + ".jsonl")
    if not manifest.is_file():
        manifest = scan(dump)
    truth = truth or dump.parent / (dump.name + ".truth.jsonl")
    records, charsets = read_manifest(manifest)
    by_loc = read_truth(truth, records)
    rows = []
    t_read = t_an = c_an = 0.0
    t0 = time.perf_counter()
    for rec, texts in iter_messages(dump, [r for r in records if r["locator"] in by_loc], charsets):
        t1 = time.perf_counter()
        c1 = time.process_time()
        t_read += t1 - t0
        texts = texts or {"subject": rec.get("subject") or "", "body": "", "attachments": []}
        an = privacy.analyse_message(texts["subject"], texts["body"], texts["attachments"],
                                     rec.get("attachment_names") or ())
        c_an += time.process_time() - c1
        t0 = time.perf_counter()
        t_an += t0 - t1
        rows.append({"rec": rec, "truth": by_loc[rec["locator"]], "analysis": an})
        if limit and len(rows) >= limit:
            break
    return rows, {"read_s": t_read, "analyse_s": t_an, "analyse_cpu_s": c_an, "truth_items": len(by_loc)}


def run_sphere(rows: List[dict], weights: Optional[dict] = None) -> Tuple[privacy.SphereModel, dict]:
    t0, c0 = time.perf_counter(), time.process_time()
    msgs = [dict(summary(r["rec"]), analysis=r["analysis"]) for r in rows]
    model = privacy.SphereModel.learn(msgs, weights=weights)
    t1, c1 = time.perf_counter(), time.process_time()
    for r, m in zip(rows, msgs):
        r["sphere"] = model.classify(m, r["analysis"])
    t2, c2 = time.perf_counter(), time.process_time()
    return model, {"learn_s": t1 - t0, "classify_s": t2 - t1, "learn_cpu_s": c1 - c0, "classify_cpu_s": c2 - c1}


def _reads_pdf() -> bool:
    import importlib.util
    return any(importlib.util.find_spec(m) is not None for m in ("pypdfium2", "pypdf"))


def _unread(where: str) -> bool:
    """PII the truth places where this script reads no text: images (no OCR), and PDFs when neither
    pypdfium2 nor pypdf is installed."""
    ext = where.lower().rsplit(".", 1)[-1]
    return ext in ("jpg", "jpeg", "png", "gif", "tif", "tiff", "bmp", "heic") or (ext == "pdf" and not _reads_pdf())


def evaluate(rows: List[dict], model: privacy.SphereModel) -> dict:
    """Scores against the truth. Sphere: messages whose truth has a sphere. PII, per kind, per message:
    recall over messages holding planted values of that kind (outside images), precision over messages
    flagged for it, decoy errors = messages flagged for a kind of which they hold only decoys."""
    res: dict = {"messages": len(rows), "pdf_text_read": _reads_pdf()}
    conf: Counter = Counter()
    for r in rows:
        want = r["truth"].get("sphere")
        if want in ("work", "personal"):
            conf[(want, r["sphere"].label)] += 1
    n = sum(conf.values())
    res["sphere"] = {"evaluated": n, "accuracy": (conf[("work", "work")] + conf[("personal", "personal")]) / max(1, n),
                     "confusion": {"%s->%s" % k: v for k, v in sorted(conf.items())}}
    doms = model.personal_domains
    pii: dict = {}
    values_missed: Counter = Counter()
    stats = {k: Counter() for k in PII_KINDS}
    examples: Dict[str, list] = defaultdict(list)
    for r in rows:
        found: Dict[str, set] = defaultdict(set)
        for _, f in r["analysis"].findings(doms):
            found[f.kind].add(f.normalized)
            found[f.kind + "/raw"].add(f.value)
        truth: Dict[str, set] = defaultdict(set)
        for p in r["truth"].get("pii") or []:
            if not _unread(p["where"]):
                truth[p["kind"]].add(p["value"])
        decoys = {p["kind"] for p in r["truth"].get("pii_decoys") or []}
        for k in PII_KINDS:
            st = stats[k]
            if truth[k]:
                st["truth_msgs"] += 1
                if found[k]:
                    st["tp"] += 1
                else:
                    st["fn"] += 1
                    examples["missed " + k].append(r["rec"]["locator"])
                if truth[k] - found[k + "/raw"]:
                    values_missed[k] += 1
            elif found[k]:
                st["fp"] += 1
                examples["extra " + k].append((r["rec"]["locator"], sorted(found[k + "/raw"])[:3]))
                if k in decoys:
                    st["decoy_errors"] += 1
    for k in PII_KINDS:
        st = stats[k]
        pii[k] = {"messages": st["truth_msgs"], "recall": st["tp"] / max(1, st["tp"] + st["fn"]),
                  "precision": st["tp"] / max(1, st["tp"] + st["fp"]), "false_messages": st["fp"],
                  "decoy_errors": st["decoy_errors"], "messages_with_a_value_missed": values_missed[k]}
    res["pii"] = pii
    # sensitive topics, per message and category
    for rule in ("threshold", "main"):
        tp, fp, fn = Counter(), Counter(), Counter()
        for r in rows:
            if r["truth"].get("sphere") is None:
                continue
            want = set(r["truth"].get("sensitive") or [])
            an = r["analysis"]
            if rule == "threshold":
                got = set(an.sensitive(personal=r["sphere"].label == "personal", personal_domains=doms))
            else:
                got = set(an.main_topics())
                if r["sphere"].label == "personal" and any(f.kind in ("iban", "card") for _, f in an.findings(doms)):
                    got.add("finances")
            for c in TOPIC_CATEGORIES:
                if c in got and c in want:
                    tp[c] += 1
                elif c in got:
                    fp[c] += 1
                elif c in want:
                    fn[c] += 1
        res["topics_" + rule] = {c: {"messages": tp[c] + fn[c], "flagged": tp[c] + fp[c],
                                     "precision": tp[c] / max(1, tp[c] + fp[c]),
                                     "recall": tp[c] / max(1, tp[c] + fn[c])} for c in TOPIC_CATEGORIES}
    res["learned_personal_domains"] = model.learned_personal_domains
    res["examples"] = {k: v[:5] for k, v in sorted(examples.items())}
    return res


def report(res: dict, timing: dict, title: str) -> str:
    n = res["messages"]
    lines = ["== %s: %d messages" % (title, n)]
    s = res["sphere"]
    lines.append("sphere accuracy %.2f%% on %d messages  %s" % (100 * s["accuracy"], s["evaluated"],
                                                            " ".join("%s=%d" % kv for kv in s["confusion"].items())))
    lines.append("learned personal mail providers: %s" % ", ".join(res["learned_personal_domains"]))
    lines.append("%-9s %8s %8s %9s %7s %6s %s" % ("pii", "messages", "recall", "precision", "extra", "decoy",
                                                 "value-missed"))
    for k, v in res["pii"].items():
        lines.append("%-9s %8d %7.2f%% %8.2f%% %7d %6d %d" % (k, v["messages"], 100 * v["recall"], 100 * v["precision"],
                                                            v["false_messages"], v["decoy_errors"],
                                                            v["messages_with_a_value_missed"]))
    for rule in ("threshold", "main"):
        lines.append("topics (%s)  " % rule + "  ".join(
            "%s P %.2f R %.2f (%d)" % (c, v["precision"], v["recall"], v["messages"])
            for c, v in res["topics_" + rule].items()))
    per = 1000.0 / max(1, n)
    lines.append("time per message: read+parse %.2f ms, analyse %.2f ms, learn %.2f ms, classify %.2f ms "
                 "(library total %.2f ms wall, %.2f ms CPU)" % (
                     timing["read_s"] * per, timing["analyse_s"] * per, timing["learn_s"] * per,
                     timing["classify_s"] * per, (timing["analyse_s"] + timing["learn_s"] + timing["classify_s"]) * per,
                     (timing["analyse_cpu_s"] + timing["learn_cpu_s"] + timing["classify_cpu_s"]) * per))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Training the sphere model (deterministic: Newton's method from zero, fixed iterations, sorted data)


def _solve(a: List[List[float]], b: List[float]) -> List[float]:
    """Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        piv = max(range(c, n), key=lambda r: (abs(m[r][c]), -r))
        m[c], m[piv] = m[piv], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(c + 1, n):
            f = m[r][c] / m[c][c]
            if f:
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    x = [0.0] * n
    for c in range(n - 1, -1, -1):
        if abs(m[c][c]) < 1e-12:
            continue
        x[c] = (m[c][n] - sum(m[c][k] * x[k] for k in range(c + 1, n))) / m[c][c]
    return x


def fit_logistic(xs: List[List[float]], ys: List[int], l2: float = 1.0, iterations: int = 30) -> List[float]:
    """L2-regularised logistic regression (the first column is the bias, not penalised)."""
    import math
    d = len(xs[0])
    w = [0.0] * d
    for _ in range(iterations):
        g = [l2 * w[j] if j else 0.0 for j in range(d)]
        h = [[(l2 if (i == j and i) else 0.0) for j in range(d)] for i in range(d)]
        for x, y in zip(xs, ys):
            z = sum(wj * xj for wj, xj in zip(w, x))
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            r = p - y
            v = p * (1.0 - p)
            for i in range(d):
                if x[i]:
                    g[i] += r * x[i]
                    vi = v * x[i]
                    hi = h[i]
                    for j in range(d):
                        if x[j]:
                            hi[j] += vi * x[j]
        step = _solve(h, g)
        w = [wj - sj for wj, sj in zip(w, step)]
        if max(abs(sj) for sj in step) < 1e-7:
            break
    return w


def _generator_args(dump: Path) -> dict:
    """How a dump was generated (from the generator's truth-meta file)."""
    meta = dump.parent / (dump.name + ".truth-meta.json")
    out = {"name": dump.name}
    if meta.is_file():
        m = json.loads(meta.read_text("utf-8"))
        out.update({k: m.get(k) for k in ("messages", "seed", "personal", "attachment_scale", "vocab")})
    return out


def train(dumps: List[Path], out: Path, l2: float = 1.0) -> dict:
    """Fit the content model, then (with the priors it gives) the sphere model, on the dumps."""
    from leaktriage.privacy.sphere import CONTENT_FEATURES, FEATURES, SphereModel, load_weights
    data = []
    for d in dumps:
        rows, _ = load_dump(d)
        rows = [r for r in rows if r["truth"].get("sphere") in ("work", "personal")]
        rows.sort(key=lambda r: r["rec"]["locator"])
        data.append((d, rows))
    base = json.loads(json.dumps(load_weights()))
    xs, ys = [], []
    for _, rows in data:
        for r in rows:
            v = r["analysis"].content.vector()
            xs.append([1.0] + [v[k] for k in CONTENT_FEATURES])
            ys.append(1 if r["truth"]["sphere"] == "personal" else 0)
    wc = fit_logistic(xs, ys, l2)
    weights = {"prior_strength": base.get("prior_strength", 2.0),
               "content": dict({"bias": round(wc[0], 4)}, **{k: round(w, 4) for k, w in zip(CONTENT_FEATURES, wc[1:])})}
    weights["sphere"] = dict(weights["content"])
    xs, ys = [], []
    for _, rows in data:
        msgs = [dict(summary(r["rec"]), analysis=r["analysis"]) for r in rows]
        model = SphereModel.learn(msgs, weights=weights)
        for r, m in zip(rows, msgs):
            v, _ = model.features(m, r["analysis"])
            xs.append([1.0] + [v[k] for k in FEATURES])
            ys.append(1 if r["truth"]["sphere"] == "personal" else 0)
    ws = fit_logistic(xs, ys, l2)
    weights["sphere"] = dict({"bias": round(ws[0], 4)}, **{k: round(w, 4) for k, w in zip(FEATURES, ws[1:])})
    weights["training"] = {
        "method": "L2-regularised logistic regression (lambda %g), Newton's method from zero; first the content "
                  "model (content features only, its probability feeds the address and domain priors), then "
                  "the sphere model on all features, priors computed leave-one-out" % l2,
        "dumps": [dict(_generator_args(d), messages_used=len(rows),
                       personal_messages=sum(1 for r in rows if r["truth"]["sphere"] == "personal"))
                  for d, rows in data],
        "command": "python benchmarks/privacy_eval.py --train leaktriage/privacy/data/sphere_model.json "
                   + " ".join("--dump %s" % d.name for d, _ in data)}
    out.write_text(json.dumps(weights, indent=1, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
    return weights


def markdown(out: Dict[str, dict], note: str) -> str:
    """The results as the Markdown block of docs/privacy.md."""
    names = list(out)
    short = [Path(n).name for n in names]
    lines = [note, "", "| | " + " | ".join(short) + " |", "|---|" + "---|" * len(names)]

    def row(label, f):
        lines.append("| %s | %s |" % (label, " | ".join(f(out[n]) for n in names)))
    row("messages (with a truth sphere)", lambda r: "%d (%d)" % (r["messages"], r["sphere"]["evaluated"]))
    row("**sphere accuracy**", lambda r: "**%.2f%%**" % (100 * r["sphere"]["accuracy"]))
    row("errors (truth->label)", lambda r: ", ".join("%s %d" % (k, v) for k, v in r["sphere"]["confusion"].items()
                                                      if k.split("->")[0] != k.split("->")[1]) or "none")
    row("learned mail providers", lambda r: str(len(r["learned_personal_domains"])))
    for k in PII_KINDS:
        row("%s: messages / recall / precision / decoy errors" % k,
            lambda r, k=k: "%d / %.1f%% / %.1f%% / %d" % (r["pii"][k]["messages"], 100 * r["pii"][k]["recall"],
                                                         100 * r["pii"][k]["precision"], r["pii"][k]["decoy_errors"]))
    def topic(r, c):
        t, m = r["topics_threshold"][c], r["topics_main"][c]
        if not t["messages"]:       # the vocabulary has no such category: nothing to recall
            return "n/a (%s flagged)" % t.get("flagged", "?")
        return "%.2f / %.2f; %.2f / %.2f" % (t["precision"], t["recall"], m["precision"], m["recall"])
    for c in TOPIC_CATEGORIES:
        row("topic %s: P / R (threshold; main)" % c, lambda r, c=c: topic(r, c))
    row("CPU time per message: analyse + learn + classify (ms)",
        lambda r: "%.1f + %.2f + %.2f" % (r["timing_ms_per_message"]["analyse_cpu"],
                                         r["timing_ms_per_message"]["learn_cpu"],
                                         r["timing_ms_per_message"]["classify_cpu"]))
    row("wall-clock time per message: analyse + learn + classify (ms)",
        lambda r: "%.1f + %.2f + %.2f" % (r["timing_ms_per_message"]["analyse"], r["timing_ms_per_message"]["learn"],
                                         r["timing_ms_per_message"]["classify"]))
    row("time per message: reading the dump (ms)", lambda r: "%.1f" % r["timing_ms_per_message"]["read"])
    return "\n".join(lines)


def write_doc(doc: Path, block: str) -> None:
    text = doc.read_text("utf-8")
    a, b = "<!-- privacy-eval:begin -->", "<!-- privacy-eval:end -->"
    if a not in text or b not in text:
        raise SystemExit("%s has no %s ... %s block" % (doc, a, b))
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    doc.write_text(head + a + "\n" + block + "\n" + b + tail, "utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", type=Path, action="append", default=[], help="a dump made with --personal (repeatable)")
    ap.add_argument("--manifest", type=Path, help="its manifest (default DUMP.jsonl, scanned when missing)")
    ap.add_argument("--truth", type=Path, help="its truth (default DUMP.truth.jsonl)")
    ap.add_argument("--generate", type=Path, help="make a dump here first (make_dump.py --personal 0.25)")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vocab", type=Path, help="--vocab for the generated dump")
    ap.add_argument("--weights", type=Path, help="sphere weights (default: the shipped model)")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--examples", action="store_true", help="print missed and extra findings")
    ap.add_argument("--train", type=Path, metavar="OUT", help="fit the sphere model on the dumps, write its weights")
    ap.add_argument("--write-doc", type=Path, metavar="MD", help="put the results table into this Markdown file")
    ap.add_argument("--doc-from", type=Path, nargs="+", metavar="JSON",
                    help="with --write-doc: the results of earlier runs (--json), one column per dump")
    a = ap.parse_args(argv)
    if a.doc_from:
        if not a.write_doc:
            ap.error("--doc-from needs --write-doc")
        out: Dict[str, dict] = {}
        for j in a.doc_from:
            out.update(json.loads(j.read_text("utf-8")))
        write_doc(a.write_doc, markdown(out, _note(out)))
        return 0
    dumps = list(a.dump)
    if a.generate:
        generate(a.generate, a.messages, a.seed, a.vocab)
        dumps.append(a.generate)
    if not dumps:
        ap.error("give --dump or --generate")
    if a.train:
        w = train(dumps, a.train)
        print(json.dumps({k: w[k] for k in ("content", "sphere")}, indent=1, sort_keys=True))
        return 0
    weights = json.loads(a.weights.read_text("utf-8")) if a.weights else None
    out = {}
    for d in dumps:
        rows, timing = load_dump(d, a.manifest if len(dumps) == 1 else None, a.truth if len(dumps) == 1 else None)
        model, t2 = run_sphere(rows, weights)
        timing.update(t2)
        res = evaluate(rows, model)
        res["timing_ms_per_message"] = {k.rsplit("_s", 1)[0]: 1000.0 * v / max(1, len(rows))
                                        for k, v in timing.items() if k.endswith("_s")}
        res["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count() or 0,
                          "load_average": round(os.getloadavg()[0], 1)}
        print(report(res, timing, str(d)))
        if a.examples:
            for k, v in res["examples"].items():
                print("  %s: %s" % (k, v))
        out[str(d)] = res
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False), "utf-8")
    if a.write_doc:
        write_doc(a.write_doc, markdown(out, _note(out)))
    return 0


def _note(out: Dict[str, dict]) -> str:
    first = next(iter(out.values()))["machine"]
    loads = ", ".join("%.1f" % r["machine"]["load_average"] for r in out.values())
    return ("Measured by `python benchmarks/privacy_eval.py --dump DUMP --json DUMP.json`, one run per dump, the "
            "table written by `--doc-from *.json --write-doc docs/privacy.md` (Python %s, %d CPUs; load averages "
            "%s at the end of the runs: the CPU times are the process's own, the wall-clock ones grow with the "
            "machine's load)."
            % (first["python"], first["cpus"], loads))

if __name__ == "__main__":
    sys.exit(main())
