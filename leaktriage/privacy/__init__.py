"""leaktriage.privacy: the private sphere of a leaked mailbox, found, explained and withheld.

- find_pii(text) -> [Finding]: personal data with real validation (IBAN mod 97 and RIB key, NIR key,
  Luhn, phone numbering plans, calendar dates, postcodes), exact spans, the rule that decided.
- find_topics(text) -> [TopicHit]: sensitive topics (health, finances, family, intimate, legal) in
  French and English, from lexicon files (data/lexicons), matched on text folded like search folds it.
- redact(text, findings) -> (text, log): labelled placeholders ([IBAN], [TÉLÉPHONE]) and a log.
- analyse_message(subject, body, attachments) -> MessageAnalysis: all of the above for one message,
  each part folded once, plus the content signals of the sphere classifier.
- SphereModel.learn(messages) then model.classify(message) -> Sphere(label, confidence, reasons):
  work or personal, from the custodian's own addresses, the dump's mail providers (learned), the
  correspondents and the content. Deterministic; the weights are a data file.

docs/privacy.md describes the rules, the data files, how the model was trained and what it scores.
"""
from .analysis import ContentSignals, MessageAnalysis, PartAnalysis, analyse_message
from .pii import PII_KINDS, Finding, find_pii, known_personal_domains
from .redact import Redaction, placeholders, redact
from .sphere import LABELS, Reason, Sphere, SphereModel
from .topics import SENSITIVE as TOPIC_CATEGORIES, THRESHOLD, TopicHit, find_topics, sensitive_categories, topic_scores

__all__ = ["PII_KINDS", "TOPIC_CATEGORIES", "LABELS", "THRESHOLD", "Finding", "TopicHit", "Redaction", "Reason",
           "Sphere", "SphereModel", "ContentSignals", "MessageAnalysis", "PartAnalysis", "find_pii",
           "find_topics", "topic_scores", "sensitive_categories", "redact", "placeholders", "analyse_message",
           "known_personal_domains"]
