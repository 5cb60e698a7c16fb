"""Attachments that can run code: executables, scripts and macro-enabled documents, whatever their name says.

    classify(magic, filename)        -> "executable" | "script" | "macro" | None   (from the manifest)
    classify(magic, filename, data)  -> the same, and the bytes decide too           (index, extract)
    disguised(kind, filename, magic) -> True when the name does not say what the content is

The content decides: a Windows executable named Facture.pdf is an executable. libmagic's type (the
part's `magic`) is read first; with the bytes, executable headers (MZ/PE, ELF, Mach-O), a '#!' line,
an OOXML package holding a VBA project (vbaProject.bin) and an OLE2 file holding VBA storages are
recognised whatever libmagic said. Scripts are also recognised by name: Windows runs a .vbs, .js or
.hta file by its extension, whatever the bytes look like. Used by `leaktriage report`, the search index
(`risk:` in queries) and `leaktriage serve`.
"""
from __future__ import annotations

import io
from typing import Optional

KINDS = ("executable", "script", "macro")

EXECUTABLE_TYPES = frozenset({
    "application/x-dosexec", "application/vnd.microsoft.portable-executable", "application/x-msdownload",
    "application/x-executable", "application/x-sharedlib", "application/x-pie-executable",
    "application/x-mach-binary", "application/x-msi", "application/x-ms-installer",
    "application/vnd.android.package-archive", "application/java-archive", "application/x-java-archive",
    "application/x-elf", "application/x-coff",
})
SCRIPT_TYPES = frozenset({
    "text/x-shellscript", "application/x-sh", "application/x-shellscript", "text/x-msdos-batch",
    "application/x-bat", "application/javascript", "text/javascript", "application/x-javascript",
    "text/x-python", "text/x-script.python", "text/x-perl", "application/x-perl", "text/x-php",
    "application/x-ms-shortcut", "application/hta", "text/vbscript", "text/x-vbscript",
    "application/x-powershell", "text/x-powershell",
})
MACRO_TYPES = frozenset({
    "application/vnd.ms-word.document.macroenabled.12", "application/vnd.ms-word.template.macroenabled.12",
    "application/vnd.ms-excel.sheet.macroenabled.12", "application/vnd.ms-excel.template.macroenabled.12",
    "application/vnd.ms-excel.addin.macroenabled.12", "application/vnd.ms-excel.sheet.binary.macroenabled.12",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12",
    "application/vnd.ms-powerpoint.slideshow.macroenabled.12",
    "application/vnd.ms-powerpoint.template.macroenabled.12",
    "application/vnd.ms-powerpoint.addin.macroenabled.12",
})
# names Windows runs (or opens with macros enabled) by their extension
SCRIPT_EXTENSIONS = frozenset({"js", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "bat", "cmd", "hta", "lnk",
                               "sh", "pif", "scf", "reg", "vb", "jar"})
EXECUTABLE_EXTENSIONS = frozenset({"exe", "dll", "scr", "com", "msi", "cpl", "sys", "elf", "bin", "apk", "app"})
MACRO_EXTENSIONS = frozenset({"docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "pptm", "potm", "ppsm", "ppam"})
NATURAL_EXTENSIONS = {"executable": EXECUTABLE_EXTENSIONS, "script": SCRIPT_EXTENSIONS | {"py", "pl", "php"},
                      "macro": MACRO_EXTENSIONS | {"doc", "dot", "xls", "xlt", "ppt", "pps"}}


def extension(filename: Optional[str]) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].strip().lower()


def classify(magic: Optional[str], filename: Optional[str], data: Optional[bytes] = None) -> Optional[str]:
    """executable, script, macro or None (see the module docstring). Never raises."""
    m = (magic or "").lower()
    if m in EXECUTABLE_TYPES:
        return "executable"
    if data is not None:
        head = bytes(data[:64])
        if head[:2] == b"MZ" or head[:4] in (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
                                             b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
            return "executable"
    if m in MACRO_TYPES:
        return "macro"
    if data is not None and has_macros(data):
        return "macro"
    if data is None and extension(filename) in MACRO_EXTENSIONS:
        return "macro"      # without the bytes (the manifest alone), the name says macro-enabled
    if m in SCRIPT_TYPES or extension(filename) in SCRIPT_EXTENSIONS:
        return "script"
    if data is not None and bytes(data[:2]) == b"#!":
        return "script"
    return None


def has_macros(data: bytes) -> bool:
    """An OOXML package with a VBA project, or an OLE2 file with VBA storages. Never raises."""
    head = bytes(data[:8])
    try:
        if head[:4] == b"PK\x03\x04":
            import zipfile
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return any(n.lower().endswith("vbaproject.bin") for n in z.namelist())
        if head == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            import olefile
            ole = olefile.OleFileIO(io.BytesIO(data))
            try:
                for entry in ole.listdir(streams=True, storages=True):
                    names = [n.upper() for n in entry]
                    if "_VBA_PROJECT_CUR" in names or "MACROS" in names or names[-1:] == ["VBA"] \
                            or "_VBA_PROJECT" in names:
                        return True
            finally:
                ole.close()
    except Exception:  # noqa: BLE001 - a damaged container holds no macro we can see
        return False
    return False


def disguised(kind: Optional[str], filename: Optional[str], mismatch=None) -> bool:
    """A dangerous attachment whose name (or declared type, per the manifest's mismatch) says otherwise."""
    if not kind:
        return False
    if mismatch:
        return True
    return extension(filename) not in NATURAL_EXTENSIONS.get(kind, ())
