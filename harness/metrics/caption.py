"""Captioning metrics (CIDEr, BLEU-4, ROUGE-L) with the COCO caption-evaluation conventions.

Captions are tokenised as pycocoevalcap's PTBTokenizer does (lower case, Penn-Treebank splitting of
clitics and punctuation, punctuation tokens dropped), in pure Python so no JVM starts per run; the test
suite checks the tokens against the Java tokenizer. Scores come from pycocoevalcap's own scorers (pure
Python), on the whole corpus at once: CIDEr's document frequencies are corpus statistics.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from harness.metrics.base import Metric, register_metric

# pycocoevalcap PTBTokenizer drops these tokens after tokenising
PTB_PUNCTUATION = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                   "...", ";"}
_CLITIC = r"'(?:s|re|ve|ll|d|m)\b"
_TOKEN = re.compile(
    r"n't\b|'n'|" + _CLITIC + r"|(?:[a-z]\.){2,}"  # clitics, rock 'n' roll, abbreviations (u.s.a.)
    r"|[a-z0-9]+(?:(?:[-./]|'(?!n'|(?:s|re|ve|ll|d|m)\b))[a-z0-9]+)*"  # words, 5.5, mother-in-law, o'clock
    r"|\.\.\.|--|\S",
    re.I,
)
_NT = re.compile(r"(\w)(n't)\b", re.I)
# With -lowerCase the Java tokenizer emits "-lrb-" etc.; the drop list above holds the upper-case forms, so
# pycocoevalcap keeps bracket tokens in the captions. We keep them too (the scores depend on it).
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}


def ptb_tokenize(text: str) -> str:
    """Tokens of a caption joined by spaces, as pycocoevalcap's PTBTokenizer (with -lowerCase) emits them."""
    text = _NT.sub(r"\1 \2", text.replace("\n", " ").replace('"', " '' ").lower())
    tokens = [_BRACKETS.get(t, t) for t in _TOKEN.findall(text)]
    return " ".join(t for t in tokens if t not in PTB_PUNCTUATION)


def _caption_item(prediction: Any, target: Any) -> tuple[str, list[str]]:
    refs = [target] if isinstance(target, str) else list(target)
    return ptb_tokenize(str(prediction or "")), [ptb_tokenize(r) for r in refs]


def _corpus(items: Sequence[tuple[str, list[str]]]):
    res = {i: [cand] for i, (cand, _) in enumerate(items)}
    gts = {i: refs for i, (_, refs) in enumerate(items)}
    return gts, res


def _cider_scores(items: Sequence[tuple[str, list[str]]]) -> list[float]:
    from pycocoevalcap.cider.cider import Cider

    _, scores = Cider().compute_score(*_corpus(items))
    return [float(s) for s in scores]


def _cider(items: Sequence[tuple[str, list[str]]]) -> float:
    scores = _cider_scores(items)
    return sum(scores) / len(scores)


def _bleu4(items: Sequence[tuple[str, list[str]]]) -> float:
    from pycocoevalcap.bleu.bleu import Bleu

    score, _ = Bleu(4).compute_score(*_corpus(items), verbose=0)
    return float(score[3])


def _rouge_l(items: Sequence[tuple[str, list[str]]]) -> float:
    from pycocoevalcap.rouge.rouge import Rouge

    score, _ = Rouge().compute_score(*_corpus(items))
    return float(score)


register_metric(Metric("cider", _caption_item, _cider, stderr="bootstrap", sample_scores=_cider_scores,
                       description="CIDEr (pycocoevalcap), corpus document frequencies"))
register_metric(Metric("bleu4", _caption_item, _bleu4, stderr="bootstrap", description="corpus BLEU-4 (pycocoevalcap)"))
register_metric(Metric("rouge_l", _caption_item, _rouge_l, stderr="bootstrap", description="ROUGE-L (pycocoevalcap)"))


def _meteor(items: Sequence[tuple[str, list[str]]]) -> float:
    """pycocoevalcap METEOR 1.5 (a Java subprocess: about 10 s to start, so use it on whole corpora)."""
    import shutil

    if shutil.which("java") is None:
        raise RuntimeError("METEOR needs a Java runtime (`java` on PATH), e.g. `apt-get install default-jre-headless`")
    from pycocoevalcap.meteor.meteor import Meteor

    score, _ = Meteor().compute_score(*_corpus(items))  # the JVM stops when the scorer is collected
    return float(score)


def _spice(items: Sequence[tuple[str, list[str]]]) -> float:
    raise RuntimeError("SPICE is unavailable offline: pycocoevalcap downloads Stanford CoreNLP 3.6.0 on first use, "
                       "which this environment cannot do; report CIDEr/BLEU/METEOR/ROUGE-L instead")


register_metric(Metric("meteor", _caption_item, _meteor, stderr="none", description="METEOR 1.5 (pycocoevalcap, Java)"))
register_metric(Metric("spice", _caption_item, _spice, stderr="none", description="SPICE: unavailable offline"))
