"""Shared helpers for the text-extraction tests (no tests here): the make_dump generator, the documents
of a generated dump (found through its truth file), and builders of real documents made with the
standard library (PDF with or without a text layer, RC4-encrypted PDF, zip-based Office/ODF files)."""
import email
import email.policy
import hashlib
import importlib.util
import io
import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path


from conftest import make_dump_path, need_generator

REPO = Path(__file__).resolve().parent.parent
MAKE_DUMP = make_dump_path()


_MODULE = []


def make_dump_module():
    """make_dump.py imported as a module, for its document builders (make_pdf, make_docx, make_scan_jpeg...)."""
    if not _MODULE:
        spec = importlib.util.spec_from_file_location("make_dump_for_text_tests", str(need_generator()))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _MODULE.append(mod)
    return _MODULE[0]


def generate_dump(out_dir: Path, messages=300, seed=7, extra=("--forgeries", "0.3", "--personal", "0.3", "--no-sign")) -> Path:
    """Run make_dump.py (python = this interpreter); returns the truth file."""
    gen = need_generator()
    subprocess.run([sys.executable, str(gen), "--messages", str(messages), "--seed", str(seed), "--doc-markers",
                    *extra, str(out_dir)], check=True, capture_output=True)
    return out_dir.parent / (out_dir.name + ".truth.jsonl")


# --------------------------------------------------------------------------------------------
# documents of a generated dump, by the truth file's attachment entries (sha256 -> bytes)

def message_bytes(dump: Path, loc: dict) -> bytes:
    c = loc["container"]
    if c == "file":
        return (dump / loc["path"]).read_bytes()
    if c == "zip":
        data = (dump / loc["path"]).read_bytes()
        for member in loc["members"]:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                data = z.read(member)
        return data
    if c == "mbox":
        with open(dump / loc["path"], "rb") as f:
            f.seek(loc["offset"])
            raw = f.read(loc["length"])
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1]
        return re.sub(rb"(?m)^>(>*From )", rb"\1", raw)
    raise ValueError("unknown container %r" % c)


def documents(dump: Path, truth: Path):
    """(truth attachment entry, decoded bytes or None when the message does not yield them) for every
    attachment in the truth file, in truth order."""
    with open(truth, encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            want = {a["sha256"]: a for a in entry["attachments"] if a.get("sha256")}
            if not want:
                continue
            msg = email.message_from_bytes(message_bytes(dump, entry["location"]), policy=email.policy.compat32)
            for part in msg.walk():
                if part.is_multipart():
                    continue
                payload = part.get_payload(decode=True)
                if payload:
                    h = hashlib.sha256(payload).hexdigest()
                    if h in want:
                        yield want.pop(h), payload
            for a in want.values():
                yield a, None


# --------------------------------------------------------------------------------------------
# PDF builders

def pdf_literal(s: str) -> bytes:
    b = s.encode("cp1252")
    return b"(" + b.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_content(lines) -> bytes:
    out = b""
    y = 780
    for ln in lines:
        out += b"BT /F1 11 Tf 72 %d Td %s Tj ET\n" % (y, pdf_literal(ln))
        y -= 14
    return out


def build_pdf(pages, *, flate=False, encrypt=None, trailer_id=b"0123456789abcdef0123456789abcdef", eof=True):
    """A PDF from pages, each ("text", [lines]) or ("image", jpeg_bytes, width, height) or ("blank",).

    encrypt: None, or (user_password, owner_password) for the standard RC4 40-bit handler (revision 2)."""
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    font = 3
    objs[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    kids = []
    streams = {}
    n = 4
    for page in pages:
        page_id, content_id = n, n + 1
        n += 2
        res = b"/Font << /F1 3 0 R >>"
        if page[0] == "text":
            content = text_content(page[1])
        elif page[0] == "image":
            jpeg, w, h = page[1], page[2], page[3]
            img_id = n
            n += 1
            streams[img_id] = (b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                               b"/BitsPerComponent 8 /Filter /DCTDecode" % (w, h), jpeg)
            res += b" /XObject << /Im1 %d 0 R >>" % img_id
            content = b"q %d 0 0 %d 36 36 cm /Im1 Do Q\n" % (min(w, 520), min(h, 760))
        else:
            content = b""
        if flate:
            streams[content_id] = (b"/Filter /FlateDecode", zlib.compress(content))
        else:
            streams[content_id] = (b"", content)
        objs[page_id] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R /Resources << %s >> >>"
                         % (content_id, res))
        kids.append(page_id)
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    enc_obj = None
    key = None
    if encrypt is not None:
        user, owner = encrypt
        o_value, key, u_value = _rc4_handler(user, owner, -4, trailer_id[:16])
        enc_obj = n
        n += 1
        objs[enc_obj] = (b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -4 /O <%s> /U <%s> >>"
                         % (o_value.hex().encode(), u_value.hex().encode()))
    for num, (dict_extra, data) in streams.items():
        if key is not None:
            data = _rc4(_obj_key(key, num), data)
        objs[num] = b"<< /Length %d %s >>\nstream\n" % (len(data), dict_extra) + data + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % size
    for num in range(1, size):
        out += b"%010d 00000 n\r\n" % offsets[num] if num in offsets else b"0000000000 65535 f\r\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R /ID [<%s> <%s>]" % (size, trailer_id[:16].hex().encode(),
                                                                  trailer_id[:16].hex().encode())
    if enc_obj:
        out += b" /Encrypt %d 0 R" % enc_obj
    out += b" >>\nstartxref\n%d\n" % xref
    if eof:
        out += b"%%EOF\n"
    return bytes(out)


_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 255
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for b in data:
        i = (i + 1) & 255
        j = (j + s[i]) & 255
        s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) & 255])
    return bytes(out)


def _rc4_handler(user: str, owner: str, p: int, file_id: bytes):
    """PDF 1.7 algorithms 3 (O), 2 (file key) and 4 (U) for revision 2."""
    pad = lambda pw: (pw.encode("latin-1") + _PAD)[:32]  # noqa: E731
    o_key = hashlib.md5(pad(owner or user)).digest()[:5]
    o_value = _rc4(o_key, pad(user))
    key = hashlib.md5(pad(user) + o_value + struct.pack("<i", p) + file_id).digest()[:5]
    u_value = _rc4(key, _PAD)
    return o_value, key, u_value


def _obj_key(key: bytes, num: int, gen: int = 0) -> bytes:
    return hashlib.md5(key + struct.pack("<I", num)[:3] + struct.pack("<H", gen)).digest()[:min(16, len(key) + 5)]


# --------------------------------------------------------------------------------------------
# zip-based documents

def zip_bytes(members, *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            if name == "mimetype":
                z.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_STORED)
            else:
                z.writestr(name, data)
    return buf.getvalue()


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
PKG = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'


def rels(*items) -> str:
    return '<?xml version="1.0"?><Relationships %s>%s</Relationships>' % (PKG, "".join(
        '<Relationship Id="%s" Type="%s%s" Target="%s"/>' % (i, RELS, t, target) for i, t, target in items))


def docx(body_xml: str, extra=None, doc_rels=()) -> bytes:
    members = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        "_rels/.rels": rels(("rId1", "officeDocument", "word/document.xml")),
        "word/document.xml": '<?xml version="1.0" encoding="UTF-8"?><w:document %s %s><w:body>%s</w:body></w:document>'
                             % (W, R, body_xml),
        "word/_rels/document.xml.rels": rels(*doc_rels),
    }
    members.update(extra or {})
    return zip_bytes(members)


def para(text: str) -> str:
    return '<w:p><w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>' % text


ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"')


def odf(kind: str, body_xml: str, manifest_extra: str = "") -> bytes:
    mt = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}[kind]
    return zip_bytes({
        "mimetype": "application/vnd.oasis.opendocument." + mt,
        "content.xml": '<?xml version="1.0" encoding="UTF-8"?><office:document-content %s><office:body>%s'
                       '</office:body></office:document-content>' % (ODF_NS, body_xml),
        "META-INF/manifest.xml": '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                                 'opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml">'
                                 '%s</manifest:file-entry></manifest:manifest>' % manifest_extra,
    })


def assemble_pdf(objs) -> bytes:
    """A PDF from {number: object body bytes} (object 1 the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % size
    for num in range(1, size):
        out += b"%010d 00000 n\r\n" % offsets[num] if num in offsets else b"0000000000 65535 f\r\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"
