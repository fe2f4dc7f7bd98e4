"""Our corpus WER and CIDEr against calling jiwer and pycocoevalcap directly, same data, same run.

10,000 utterances (LibriVox references and real recogniser output, cycled and perturbed so that every
pair differs) and 10,000 captions with five references each. Both sides do the same work: the same
normalisation (Whisper English + basic normaliser for WER; PTB-style tokens for CIDEr), then the score.

    python bench/metrics.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def asr_pairs(n: int) -> list[tuple[str, str]]:
    sample = REPO / "tasks" / "librispeech_test_clean" / "sample"
    refs = {Path(json.loads(l)["audio"]).stem: json.loads(l)["gt"] for l in (sample / "docs.jsonl").read_text().splitlines()}
    base = []
    for line in (sample / "test-lm.match").read_text().splitlines():
        m = re.match(r"(.*)\((\S+) -?\d+\)\s*$", line)
        base.append((refs[m[2]], m[1].strip()))
    rng = random.Random(0)
    out = []
    for i in range(n):
        ref, hyp = base[i % len(base)]
        words = hyp.split()
        words[rng.randrange(len(words))] = rng.choice(["the", "a", "mister", "twenty"])
        out.append((ref, " ".join(words)))
    return out


def captions(n: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(0)
    nouns = "dog cat man woman car bird train horse child ball tree water street kitchen".split()
    verbs = "runs sits plays stands jumps walks rides eats looks waits".split()
    places = "on the beach|in a park|near the road|inside a room|under a tree|by the river".split("|")

    def sentence() -> str:
        return f"A {rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(places)}."

    return [(sentence(), [sentence() for _ in range(5)]) for _ in range(n)]


def timed(fn) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()

    import jiwer
    from pycocoevalcap.cider.cider import Cider
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    from harness.metrics.base import get_metric
    from harness.metrics.caption import ptb_tokenize

    pairs = asr_pairs(args.n)
    wer = get_metric("wer")
    english, basic = EnglishTextNormalizer(), BasicTextNormalizer()
    ours_wer, t_ours = timed(lambda: wer.aggregate([wer.item(h, r) for r, h in pairs]))

    def jiwer_direct():
        refs = [basic(english(r)) for r, _ in pairs]
        hyps = [basic(english(h)) for _, h in pairs]
        return jiwer.wer(refs, hyps)

    their_wer, t_theirs = timed(jiwer_direct)
    print(f"WER   n={args.n}: ours {t_ours:.2f} s ({ours_wer:.4f}), jiwer {t_theirs:.2f} s ({their_wer:.4f}), "
          f"ratio ours/jiwer {t_ours / t_theirs:.2f}")

    caps = captions(args.n)
    cider = get_metric("cider")
    ours_cider, t_ours = timed(lambda: cider.aggregate([cider.item(c, refs) for c, refs in caps]))

    def cider_direct():
        gts = {i: [ptb_tokenize(r) for r in refs] for i, (_, refs) in enumerate(caps)}
        res = {i: [ptb_tokenize(c)] for i, (c, _) in enumerate(caps)}
        return Cider().compute_score(gts, res)[0]

    their_cider, t_theirs = timed(cider_direct)
    print(f"CIDEr n={args.n}: ours {t_ours:.2f} s ({ours_cider:.4f}), pycocoevalcap {t_theirs:.2f} s "
          f"({their_cider:.4f}), ratio ours/pycocoevalcap {t_ours / t_theirs:.2f}")


if __name__ == "__main__":
    main()
