"""Sensitive topics: lexicon files matched on text folded exactly as search folds it, whole words,
exact spans, e-mail addresses and domains not read, categories decided by distinct-term weights."""
from leaktriage.privacy import find_topics, sensitive_categories, topic_scores
from leaktriage.privacy.analysis import analyse_message
from leaktriage.privacy.topics import Lexicon, read_lexicon
from leaktriage.privacy.data import data_path


def hits(text, **kw):
    return [(h.category, text[h.start:h.end], h.term) for h in find_topics(text, **kw)]


def test_case_accents_and_ligatures_fold_like_search():
    for text, written in (("Papa sort de l'hôpital jeudi", "hôpital"), ("PAPA SORT DE L'HOPITAL", "HOPITAL"),
                          ("papa sort de l’Hôpital", "Hôpital")):
        got = hits(text)
        assert ("health", written, "hopital") in got
        assert ("family", text[:4], "papa") in got
    # œ is folded to "oe" as search does: "sœur" matches the lexicon's "soeur"
    assert ("family", "ma sœur", "ma soeur") in hits("Je garde les enfants de ma sœur.")
    assert ("family", "Ma Sœur", "ma soeur") in hits("Ma Sœur arrive.")


def test_whole_words_and_prefixes():
    assert hits("Le dépôt de l'amendement est prévu.") == []            # not "amende"
    assert hits("J'ai reçu une amende.") == [("legal", "amende", "amende")]
    assert ("health", "cancéreuse", "cancer*") in hits("une tumeur cancéreuse")
    assert ("health", "cancérologue", "cancer*") in hits("le cancérologue")
    assert hits("un traitement anticancer") == [("health", "traitement", "traitement")]   # no prefix inside a word


def test_hyphenated_compounds():
    assert hits("Ma belle-sœur arrive.") == [("family", "belle-sœur", "belle soeur")]      # not "ma belle"
    assert hits("Ma belle, tu me manques.")[0] == ("intimate", "Ma belle", "ma belle")
    assert ("family", "arrière-grand", "arriere grand*") in hits("Mon arrière-grand-mère a 99 ans")
    assert ("family", "grand-mère", "grand mere") in hits("Ma grand-mère.")


def test_multi_word_terms_span_the_original_text():
    text = "Les résultats d'analyses sont arrivés : prise de sang normale."
    got = hits(text)
    assert ("health", "prise de sang", "prise de sang") in got
    assert ("health", "résultats d'analyses", "resultats d analyses") in got


def test_nested_term_counted_once_per_category():
    got = [h for h in find_topics("Je suis en arrêt maladie.") if h.category == "health"]
    assert [h.term for h in got] == ["arret maladie"]


def test_email_addresses_and_domains_are_not_read():
    text = "De : joel.durand@cabinet-lemaitre-avocats.fr, voir www.hopital-exemple.fr"
    assert hits(text) == []


def test_languages():
    by = {h.term: h.language for h in find_topics("divorce and custody; le divorce")}
    assert by["divorce*"] == "fr+en" and by["custody"] == "en"


def test_scores_and_threshold():
    weak = find_topics("Il y a eu une opération.")          # "operation" alone weighs 1
    assert sensitive_categories(weak) == []
    strong = find_topics("La chimiothérapie commence lundi.")
    assert sensitive_categories(strong) == ["health"]
    repeated = find_topics("opération, opération, opération")
    assert topic_scores(repeated)["health"] == 1               # distinct terms, not occurrences


def test_policy_words_are_weak():
    # the generator's work mail talks of santé, impôts, retraites, procédure, avocat as policy topics
    text = "Note pour le candidat : santé, impôts, retraites. Procédure validée par notre avocat."
    assert sensitive_categories(find_topics(text)) == []


def test_lexicon_files_parse_and_extend(tmp_path):
    for cat in ("health", "finances", "family", "intimate", "legal", "private", "work"):
        for lang in ("fr", "en"):
            terms = read_lexicon(data_path("lexicons", "%s.%s.txt" % (cat, lang)))
            assert len(terms) >= 20 and all(1 <= w <= 3 for _, w in terms)
    extra = tmp_path / "lex"
    extra.mkdir()
    (extra / "health.fr.txt").write_text("# our own\nOrthèse plantaire | 3\n", "utf-8")
    assert hits("une orthèse plantaire") == []
    got = hits("une ORTHESE plantaire", extra_dirs=[str(extra)])
    assert got == [("health", "ORTHESE plantaire", "orthese plantaire")]
    lex = Lexicon([str(extra)])
    assert lex.categories == ["health"]


def test_message_analysis_combines_parts():
    a = analyse_message("Résultats", "Le cardiologue m'a prescrit un traitement.", [("ordonnance.txt", "Posologie : 1 comprimé")],
                        ["ordonnance.txt"])
    wheres = {w for w, h in a.topics if h.category == "health"}
    assert wheres == {"body", "attachment:ordonnance.txt", "attachment-names"}
    assert a.sensitive() == ["health"]
