"""Near-duplicates (leaktriage.conversations.neardup): edited documents and bodies grouped with their
similarity and the passages that differ; exact duplicates kept together; deterministic whatever
the worker count."""
import io
import random

import pytest

from leaktriage.conversations import Doc, near_duplicates, write_jsonl
from leaktriage.conversations.neardup import THRESHOLDS, lsh_params, shingle_hashes

WORDS = ("budget réunion conseil mairie candidat programme éducation santé transport logement culture sport "
         "jeunesse emploi sécurité environnement agriculture numérique énergie tourisme commerce industrie "
         "recherche université hôpital école collège lycée retraite famille impôt dépense recette subvention "
         "association bénévole militant tract affiche meeting presse journal radio télévision").split()


def memo(seed, n=220):
    rng = random.Random(seed)
    lines = []
    for _ in range(n // 11):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(10)) + " %d." % rng.randint(100, 99999))
    return "Note interne\n" + "\n".join(lines)


def edit(text, seed, k):
    """Change k words of text (one figure among them)."""
    rng = random.Random(seed)
    lines = text.split("\n")
    for _ in range(k):
        i = rng.randrange(1, len(lines))
        w = lines[i].split(" ")
        j = rng.randrange(len(w) - 1)
        w[j] = "MODIFIÉ%d" % rng.randint(0, 999)
        lines[i] = " ".join(w)
    return "\n".join(lines)


def jaccard5(a, b):
    import re
    def sh(t):
        w = re.findall(r"\w+", t.lower())
        return {tuple(w[i:i + 5]) for i in range(len(w) - 4)}
    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def corpus_docs():
    original = memo(1)
    variant = edit(original, 2, 6)
    docs = [
        Doc("a/1.eml#1.2", "attachment", original, key="sha-orig"),
        Doc("b/7.eml#1.2", "attachment", original, key="sha-orig"),           # the same file again
        Doc("c/3.eml#1.3", "attachment", variant, key="sha-variant"),          # an edited variant
        Doc("d/4.eml#1.2", "attachment", memo(3), key="sha-other"),            # an unrelated memo
        Doc("e/5.eml", "body", original),                                      # the same text as a body: another kind
        Doc("f/6.eml", "body", "Merci, je regarde ça demain."),                # too short
    ]
    for i in range(30):
        docs.append(Doc("noise/%d.eml#1.2" % i, "attachment", memo(100 + i), key="noise-%d" % i))
    return original, variant, docs


def test_an_edited_document_is_found_with_its_similarity_and_passages(corpus_docs):
    original, variant, docs = corpus_docs
    res = near_duplicates(docs, threshold=0.5)
    (g,) = [g for g in res.groups if g["kind"] == "attachment"]
    assert [m["key"] for m in g["members"]] == ["sha-orig", "sha-variant"]
    assert g["members"][0]["ids"] == ["a/1.eml#1.2", "b/7.eml#1.2"]           # exact duplicates stay together
    (link,) = g["links"]
    assert link["similarity"] == round(jaccard5(original, variant), 4) == g["similarity_min"]
    assert 0.5 <= link["similarity"] < 0.95
    assert link["change"] == "edited" and 1 <= len(link["passages"]) <= 5
    p = link["passages"][0]
    assert "[" in p["a"] and "MODIFIÉ" in p["b"].split("[")[1]
    assert link["a_id"] == "a/1.eml#1.2" and link["b_id"] == "c/3.eml#1.3"
    assert res.stats["too_short"] == 1 and res.stats["docs"] == len(docs)
    # the body with the same text is compared with bodies only
    assert not any(g["kind"] == "body" for g in res.groups)


def test_below_the_threshold_nothing_is_grouped(corpus_docs):
    original, variant, docs = corpus_docs
    res = near_duplicates(docs, threshold=0.99)
    assert res.groups == []


def test_quoted_replies_are_not_near_duplicates_of_what_they_quote():
    text = memo(5, 120)
    reply = "D'accord pour le budget, on en parle demain.\n\nLe 3 mars 2017 à 10:00, Alice <a@x.example> a écrit :\n" + \
        "\n".join("> " + l for l in text.split("\n"))
    outlook = "Vu, merci.\n\nDe : Alice [mailto:a@x.example]\nEnvoyé : vendredi 3 mars 2017 10:00\nÀ : Bob\n" \
              "Objet : Budget\n\n" + text
    res = near_duplicates([Doc("m/1", "body", text), Doc("m/2", "body", reply), Doc("m/3", "body", outlook)],
                          threshold=0.3)
    assert res.groups == [] and res.stats["too_short"] == 2


def test_edited_email_bodies_are_grouped():
    a = memo(7, 80)
    b = edit(a, 8, 2)
    res = near_duplicates([Doc("x/Sent/1.eml", "body", a), Doc("y/Inbox/1.eml", "body", b)])
    (g,) = res.groups
    assert g["kind"] == "body" and g["threshold"] == THRESHOLDS["body"]
    assert g["links"][0]["similarity"] >= THRESHOLDS["body"]


def test_same_records_whatever_the_worker_count_and_run(corpus_docs, monkeypatch):
    from leaktriage.conversations import neardup
    monkeypatch.setattr(neardup, "CHUNK", 3)       # enough batches for the worker pool to be used
    _, _, docs = corpus_docs
    outs = []
    for workers in (1, 2, 2):
        buf = io.StringIO()
        write_jsonl(near_duplicates(iter(docs), threshold=0.4, workers=workers).records(), buf)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2] and outs[0]


def test_shingle_hashes_are_stable_values():
    # the same words give the same hashes in every process (CRC-32 based, not Python's salted hash())
    h = shingle_hashes(["le", "budget", "est", "de", "1500", "euros"], 5)
    assert h.tolist() == sorted(set(h.tolist())) and len(h) == 2
    assert shingle_hashes(["le", "budget", "est", "de", "1500", "euros"], 5).tolist() == h.tolist()
    assert len(shingle_hashes(["a", "b"], 5)) == 1 and len(shingle_hashes([], 5)) == 0


def test_lsh_parameters_come_from_datasketch():
    b, r = lsh_params(0.4, 128)
    assert b * r <= 128 and b > 1 and r > 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, {"body": 0}, {"other": 0.5}])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError):
        near_duplicates([], threshold=bad)


def test_bad_kind_is_refused():
    with pytest.raises(ValueError):
        near_duplicates([Doc("x", "image", "text")])


def test_scratch_files_are_removed(tmp_path, corpus_docs):
    near_duplicates(corpus_docs[2], scratch_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_hostile_texts_do_not_break_it():
    docs = [Doc("h/1", "body", None), Doc("h/2", "attachment", "\ud800\x00" * 50 + " mot" * 40, key="k2"),
            Doc("h/3", "attachment", "\ud800\x00" * 50 + " mot" * 40, key="k3"), Doc("h/4", "body", "x" * 100000),
            Doc("h/5", "attachment", " ".join("w%d" % i for i in range(60000)), key="k5")]
    res = near_duplicates(docs, threshold=0.5)
    (g,) = res.groups
    assert [m["key"] for m in g["members"]] == ["k2", "k3"] and g["links"][0]["similarity"] == 1.0
    assert res.stats["too_short"] == 2
