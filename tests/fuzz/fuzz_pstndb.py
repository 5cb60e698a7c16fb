"""atheris fuzz target for leaktriage's own PST reader (containers/pstndb.py).

Run: python tests/fuzz/fuzz_pstndb.py -max_total_time=60 [corpus_dir]
Seed it with real PST files (.ci/run copies the corpus PSTs when LEAKTRIAGE_CORPORA is set). The
reader may only ever raise PstFormatError: any other exception is a bug. Every folder, message,
recipient table, attachment and embedded message reachable from the root folder is read.
"""
import sys

import atheris

with atheris.instrument_imports():
    from leaktriage.containers import pstndb

LIMIT = 200  # objects visited per input


def _message(m, budget, depth=0):
    m.props
    m.recipients
    for a in m.attachments:
        budget[0] -= 1
        if budget[0] < 0:
            return
        a.props
        a.data
        if a.method == 5 and depth < 4:
            _message(a.embedded_message(), budget, depth + 1)


def TestOneInput(data: bytes) -> None:
    try:
        pst = pstndb.PstFile(data)
        pst.message_store
        budget = [LIMIT]
        todo = [pstndb.NID_ROOT_FOLDER]
        while todo and budget[0] > 0:
            budget[0] -= 1
            folder = pst.folder(todo.pop())
            folder.props
            todo.extend(folder.subfolder_nids[:20])
            for nid in folder.message_nids[:20]:
                budget[0] -= 1
                try:
                    _message(pst.message(nid), budget)
                except pstndb.PstFormatError:
                    pass
    except pstndb.PstFormatError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
