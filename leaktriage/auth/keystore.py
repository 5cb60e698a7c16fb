"""Offline DKIM key store: the public keys a newsroom has collected (or derived), never DNS.

Accepted formats for ``KeyStore.load(path)``:

* a JSON object mapping ``selector._domainkey.domain`` (trailing dot optional, case-insensitive) to
  either the TXT record value (a string) or an object ``{"txt": "...", "provenance": "..."}``; an
  object may name a ``"file"`` (relative to the JSON file) holding the TXT value instead of
  ``"txt"``. Other members (``bits``, ``messages_used``, ...) are ignored.
* a folder of files named ``selector._domainkey.domain`` or ``selector._domainkey.domain.txt``,
  each holding the TXT value (quoted dig-style strings are joined). Other files are ignored.

A key written by key recovery carries ``"provenance": "derived, not anchored"``.
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

DERIVED = "derived, not anchored"
_NAME = re.compile(r"^[^\s/\\]+\._domainkey\.[^\s/\\]+$", re.I)
_MAX_FILE = 1 << 20


class KeyStoreError(Exception):
    """A key store file or folder could not be used; the message says which and why."""


def normalise_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _txt_from_text(text: str) -> str:
    """TXT value from file content: quoted strings (dig output) are joined, else whitespace is
    trimmed and line breaks removed."""
    t = text.strip()
    quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', t)
    if quoted and t.startswith('"'):
        return "".join(q.replace('\\"', '"').replace("\\\\", "\\") for q in quoted)
    return " ".join(line.strip() for line in t.splitlines() if line.strip())


class KeyStore:
    """Mapping of DNS names to (TXT value, provenance). Immutable after construction."""

    def __init__(self, entries: Mapping[str, Tuple[str, Optional[str]]], source: str = "memory"):
        self._entries: Dict[str, Tuple[str, Optional[str]]] = {
            normalise_name(k): (v[0], v[1]) for k, v in entries.items()}
        self.source = source     # where it was read from: for messages to people, never for the manifest

    @property
    def digest(self) -> str:
        """SHA-256 of the keys and provenances (sorted, canonical JSON): what the manifest names as the
        key store, the same wherever the file lies and whatever its layout (JSON or a folder)."""
        import hashlib
        canon = json.dumps(sorted([k, v[0], v[1]] for k, v in self._entries.items()), ensure_ascii=False,
                           separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Union[str, Mapping]], source: str = "memory",
                  base_dir: Optional[str] = None) -> "KeyStore":
        entries: Dict[str, Tuple[str, Optional[str]]] = {}
        for name, val in mapping.items():
            if not isinstance(name, str) or not _NAME.match(name.strip()):
                raise KeyStoreError("%s: %r is not a name of the form selector._domainkey.domain"
                                    % (source, name))
            prov: Optional[str] = None
            if isinstance(val, str):
                txt = val
            elif isinstance(val, Mapping):
                prov = val.get("provenance")
                if prov is not None and not isinstance(prov, str):
                    raise KeyStoreError("%s: provenance of %s must be a string" % (source, name))
                if isinstance(val.get("txt"), str):
                    txt = val["txt"]
                elif isinstance(val.get("file"), str):
                    fpath = val["file"]
                    if base_dir is not None and not os.path.isabs(fpath):
                        fpath = os.path.join(base_dir, fpath)
                    txt = _read_text(fpath)
                else:
                    raise KeyStoreError("%s: entry %s has neither a \"txt\" string nor a \"file\""
                                        % (source, name))
            else:
                raise KeyStoreError("%s: value of %s must be a TXT string or an object with \"txt\""
                                    % (source, name))
            key = normalise_name(name)
            if key in entries:
                raise KeyStoreError("%s: %s is listed twice" % (source, key))
            entries[key] = (_txt_from_text(txt), prov)
        return cls(entries, source)

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "KeyStore":
        path = os.fspath(path)
        if os.path.isdir(path):
            return cls._load_dir(path)
        if not os.path.exists(path):
            raise KeyStoreError("%s: no such key store file or folder" % path)
        text = _read_text(path)
        try:
            data = json.loads(text)
        except ValueError as e:
            raise KeyStoreError("%s: not valid JSON (%s)" % (path, e))
        if not isinstance(data, dict):
            raise KeyStoreError("%s: the key store must be a JSON object mapping "
                                "selector._domainkey.domain to a TXT value" % path)
        return cls.from_dict(data, source=path, base_dir=os.path.dirname(os.path.abspath(path)))

    @classmethod
    def _load_dir(cls, path: str) -> "KeyStore":
        entries: Dict[str, Tuple[str, Optional[str]]] = {}
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            raise KeyStoreError("%s: cannot list folder (%s)" % (path, e))
        for fn in names:
            full = os.path.join(path, fn)
            stem = fn[:-4] if fn.lower().endswith(".txt") else fn
            if not _NAME.match(stem) or not os.path.isfile(full):
                continue
            key = normalise_name(stem)
            if key in entries:
                raise KeyStoreError("%s: two files hold the key %s" % (path, key))
            entries[key] = (_txt_from_text(_read_text(full)), None)
        return cls(entries, path)

    def lookup(self, name: str) -> Optional[Tuple[str, Optional[str]]]:
        return self._entries.get(normalise_name(name))

    def names(self) -> Iterable[str]:
        return sorted(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        return normalise_name(name) in self._entries


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as e:
        raise KeyStoreError("%s: cannot read (%s)" % (path, e))
    if len(data) > _MAX_FILE:
        raise KeyStoreError("%s: larger than 1 MiB, not a key store" % path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KeyStoreError("%s: not UTF-8 text" % path)
