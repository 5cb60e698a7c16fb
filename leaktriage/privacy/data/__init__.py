"""Data files of leaktriage.privacy (lexicons, placeholder labels, provider domains, the sphere
model's weights). Described in docs/privacy.md."""
from __future__ import annotations

import os
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))


def data_path(*parts: str) -> str:
    return os.path.join(HERE, *parts)


def read_list(*parts: str) -> List[str]:
    """Lines of a list file, without comments ('#' to the end of the line) and blank lines."""
    out = []
    with open(data_path(*parts), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    return out
