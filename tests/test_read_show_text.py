"""`leaktriage show --text` (issue #15 item 1): the message as a person reads it, on stdout, in the charsets
the manifest records; attachments' text; the pager; failures with their codes."""
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from leaktriage.cli.main import cli
from support.readkit import BODY_CP1252, CODEWORD_PDF, build_reading
from test_search_common import REPO


@pytest.fixture(scope="module")
def reading(tmp_path_factory):
    return build_reading(tmp_path_factory.mktemp("show"), index=False)


def show(manifest, loc, *more):
    return CliRunner().invoke(cli, ["show", loc, "-m", str(manifest), "--text", *more])


def test_message_reads_like_an_email(reading):
    dump, m, _, locs = reading
    r = show(m, locs["cp1252"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    lines = out.splitlines()
    assert lines[0] == "From:    Loïc Durand <l.durand@example.org>"
    assert lines[1] == "To:      Hélène <h@example.org>"
    assert lines[2].startswith("Date:    Wed, 1 Mar 2017 09:00:00 +0100  (2017-03-01T08:00:00Z)")
    assert lines[3] == "Subject: Réunion à l'Élysée"
    # the body, decoded from windows-1252 quoted-printable: exactly the text that was written
    assert BODY_CP1252.strip() in out
    att = out[out.index("Attachments (6):"):]
    for name, typ in (("facture.pdf", "application/pdf"), ("Facture_6561.pdf", "portable-executable"),
                      ("budget.docm", ""), ("scan.pdf", "application/pdf"), ("secret.pdf", "application/pdf"),
                      ("rapports.zip", "application/zip")):
        assert name in att and typ in att, name
    assert "(declared application/pdf: declared-type, extension mismatch)" in att
    assert locs["cp1252"] + "#1.7" in att and "inside: rapport.docx" in att
    assert locs["cp1252"] + "#1.7!zip:rapport.docx" in att
    assert att.index("Attachments") < out.index("DKIM:") < out.index("Locator: " + locs["cp1252"])
    assert r.stderr == ""


def test_html_only_message_is_turned_into_text_and_copies_are_named(reading):
    dump, m, _, locs = reading
    r = show(m, locs["html"])
    assert r.exit_code == 0, r.output
    assert "Rendez-vous avec Mme N\u2019Diaye jeudi." in r.stdout and "Ordre du jour" in r.stdout
    assert "<p>" not in r.stdout and "color:red" not in r.stdout
    assert "no text/plain part" in r.stderr
    assert "Copies: 2 in all; the others: " + locs["html_copy"] in r.stdout
    assert show(m, locs["html"], "-q").stderr == ""


def test_attached_messages_inline(reading):
    dump, m, _, locs = reading
    r = show(m, locs["forward"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    a, b = out.index("pour info"), out.index("---------- Attached message %s#1.2 ----------" % locs["forward"])
    c = out.index("voir ci-dessous")
    d = out.index("---------- Attached message %s#1.2.1.2 ----------" % locs["forward"])
    assert a < b < c < d < out.index("ci-joint") < out.index("Attachments (")
    assert "Subject: Tr: factures" in out and "Subject: factures" in out
    assert "notes.txt" in out and "Facture_6562.pdf" in out


def test_attachment_text_and_its_failures(reading):
    dump, m, _, locs = reading
    loc = locs["cp1252"]
    r = show(m, loc + "#1.2")
    assert r.exit_code == 0 and CODEWORD_PDF in r.stdout and r.stderr == ""
    r = show(m, loc + "#1.7!zip:rapport.docx")          # a document inside an attached archive
    assert r.exit_code == 0 and "osprey-1937" in r.stdout
    r = show(m, loc + "#1.5")                            # a scan: no text, and it says why
    assert r.exit_code == 0 and r.stdout == "" and "text.no_text_layer" in r.stderr
    r = show(m, loc + "#1.6")                            # encrypted: no text at all
    assert r.exit_code == 6 and r.stdout == "" and "text.encrypted" in r.stderr
    r = show(m, loc + "#1.3")                            # a program named .pdf
    assert r.exit_code == 6 and "text.type_mismatch" in r.stderr and "exe" in r.stderr


def test_changed_dump_is_refused(reading, tmp_path):
    import shutil
    dump, m, _, locs = reading
    copy = tmp_path / "d"
    shutil.copytree(dump, copy)
    p = copy / locs["html"]
    p.write_bytes(p.read_bytes().replace(b"Rendez-vous", b"Rendez-Vous"))
    r = show(m, locs["html"], "--dump", str(copy))
    assert r.exit_code == 5 and r.stdout == "" and "SHA-256" in r.stderr


def test_text_excludes_raw_and_json(reading):
    dump, m, _, locs = reading
    r = show(m, locs["html"], "--raw")
    assert r.exit_code == 2 and "exclude each other" in r.stderr


def _in_pty(argv, env):
    """Run argv with stdout on a pseudo-terminal; returns (exit code, what reached the terminal)."""
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(str(REPO))
        os.execve(sys.executable, [sys.executable, "-m", "leaktriage"] + argv, env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_pager_on_a_terminal_and_no_pager(reading, tmp_path):
    dump, m, _, locs = reading
    paged = tmp_path / "paged.txt"
    env = dict(os.environ, PAGER="tee %s" % paged, PYTHONPATH=str(REPO))
    code, seen = _in_pty(["show", locs["cp1252"], "-m", str(m), "--text"], env)
    assert code == 0
    assert BODY_CP1252.strip().encode("utf-8") in paged.read_bytes().replace(b"\r\n", b"\n")
    paged.unlink()
    code, seen = _in_pty(["show", locs["cp1252"], "-m", str(m), "--text", "--no-pager"], env)
    assert code == 0 and not paged.exists() and "Réunion à l'Élysée" in seen
    # piped: plain UTF-8, no pager, whatever PAGER says
    r = subprocess.run([sys.executable, "-m", "leaktriage", "show", locs["cp1252"], "-m", str(m), "--text"],
                       capture_output=True, env=env, cwd=str(REPO))
    assert r.returncode == 0 and not paged.exists()
    assert BODY_CP1252.strip().replace("\n", os.linesep).encode("utf-8") in r.stdout


def test_show_view_goes_to_stdout_for_a_pipe(reading):
    dump, m, _, locs = reading
    r = subprocess.run([sys.executable, "-m", "leaktriage", "show", locs["html"], "-m", str(m)],
                       capture_output=True, cwd=str(REPO), env=dict(os.environ, NO_COLOR="1"))
    assert r.returncode == 0 and b"leaktriage show: message" in r.stdout and b"\x1b[" not in r.stdout


def test_utf8_declared_latin1_is_shown_as_recorded_and_flagged(tmp_path):
    """The manifest's charset decision is followed (issue #15: "decoded with the charset decisions the
    manifest records"); when that decision reads UTF-8 bytes as windows-1252, show says so."""
    from leaktriage import Options, scan
    from leaktriage.search.build import build_index
    dump = tmp_path / "d" / "x"
    dump.mkdir(parents=True)
    (dump / "1.eml").write_bytes(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n"
                                 b"Date: Wed, 1 Mar 2017 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
                                 b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                                 + "Bonsoir Mélanie, ça va ?\r\n".encode("utf-8"))
    m = tmp_path / "m.jsonl"
    scan(str(tmp_path / "d"), str(m), Options(workers=1))
    part = next(json.loads(l) for l in m.read_text(encoding="utf-8").splitlines() if '"record":"part"' in l)
    r = show(m, "x/1.eml")
    assert r.exit_code == 0
    if part["charset"] == "cp1252":          # the scan's rule today: the declared charset decodes, so it is used
        assert "Bonsoir MÃ©lanie" in r.stdout and "text.charset_suspect" in r.stderr
    else:                                     # a scan that detects the mislabelling: the text reads right, no warning
        assert "Bonsoir Mélanie" in r.stdout and "text.charset_suspect" not in r.stderr
    build_index(str(m), str(tmp_path / "d"), str(tmp_path / "t.db"), workers=1)
    import sqlite3
    codes = [c for (c,) in sqlite3.connect(str(tmp_path / "t.db")).execute("SELECT code FROM problems WHERE origin = 'index'")]
    assert codes == (["text.charset_suspect"] if part["charset"] == "cp1252" else [])
