"""What a killed leaktriage leaves behind, and its removal by the next run.

Temporary files and folders are named PREFIX + HOST-PID(-...), after the host and process that
write them, so that a later run can tell one left by a process that no longer runs (kill -9,
SIGTERM, power loss) from one in use, or from one of another host sharing the folder."""
from __future__ import annotations

import os
import shutil
import socket
from typing import List


def host() -> str:
    """This host's name, safe in a file name."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:64] or "host"


def owner() -> str:
    """HOST-PID of this process, for the names of what it writes."""
    return "%s-%d" % (host(), os.getpid())


def remove_left_by_dead(folder: str, prefix: str) -> List[str]:
    """Remove the entries of folder named PREFIX + HOST-PID(-...) of this host whose process no
    longer runs (files and folders; never a symbolic link). Returns what was removed."""
    mine = prefix + host() + "-"
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        pid_s = name[len(mine):].split("-", 1)[0] if name.startswith(mine) else ""
        if not pid_s.isdigit():
            continue
        try:
            os.kill(int(pid_s), 0)
            continue                      # that process still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue                      # another user's running process
        path = os.path.join(folder, name)
        if os.path.islink(path):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isfile(path):
            os.unlink(path)
        else:
            continue
        removed.append(path)
    return removed
