"""Every metric against an independent reference on real data."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.metrics.base import get_metric
from harness.metrics.uncertainty import mean_stderr, paired_difference

REPO = Path(__file__).resolve().parents[2]
LIBRI = REPO / "tasks" / "librispeech_test_clean" / "sample"


def librivox_pairs() -> list[tuple[str, str]]:
    """(reference transcript, real pocketsphinx hypothesis) for the 5 LibriVox clips."""
    refs = {}
    for line in (LIBRI / "docs.jsonl").read_text().splitlines():
        row = json.loads(line)
        refs[Path(row["audio"]).stem] = row["gt"]
    pairs = []
    for line in (LIBRI / "test-lm.match").read_text().splitlines():
        m = re.match(r"(.*)\((\S+) -?\d+\)\s*$", line)
        pairs.append((refs[m[2]], m[1].strip()))
    return pairs


def test_corpus_wer_matches_jiwer_with_whisper_normalisers():
    import jiwer
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    pairs = librivox_pairs()
    assert len(pairs) == 5
    wer = get_metric("wer")
    ours = wer.aggregate([wer.item(hyp, ref) for ref, hyp in pairs])
    english, basic = EnglishTextNormalizer(), BasicTextNormalizer()
    norm = [(basic(english(r)), basic(english(h))) for r, h in pairs]
    theirs = jiwer.wer([r for r, _ in norm], [h for _, h in norm])  # jiwer pools edits over the corpus
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert 0.2 < ours < 0.4  # the shipped recogniser output is known to be about 0.28


def test_wer_is_corpus_level_not_a_mean():
    wer = get_metric("wer")
    items = [wer.item("a b c d e f g h i j", "a b c d e f g h i j"), wer.item("x", "y")]
    assert wer.aggregate(items) == pytest.approx(1 / 11)
    assert wer.item("<|en|> Hello , World!", "hello world") == (0, 2)


CAPTIONS = [
    ("A man is riding a horse on the beach.", ["A man rides a horse along the beach.", "Someone riding a horse by the sea.",
                                               "A horse and rider on a sandy beach.", "A man on horseback at the shore.",
                                               "The man is riding his horse on the sand."]),
    ("Two dogs don't play in the snow!", ["Two dogs are playing in the snow.", "A pair of dogs play in snow.",
                                          "Dogs running around in the snow.", "Two puppies frolic in the white snow.",
                                          "Two dogs romp through deep snow."]),
    ("A kitchen with a stove (and) a sink", ["A kitchen with a stove and a sink.", "A small kitchen, stove and sink.",
                                            "The kitchen has a sink and an oven.", "A clean kitchen with appliances.",
                                            "Stove and sink in a tiny kitchen."]),
]


@pytest.mark.skipif(shutil.which("java") is None, reason="PTBTokenizer reference needs Java")
def test_caption_tokenizer_and_cider_match_pycocoevalcap():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": r} for r in refs] for i, (_, refs) in enumerate(CAPTIONS)}
    res = {i: [{"caption": c}] for i, (c, _) in enumerate(CAPTIONS)}
    tok = PTBTokenizer()
    gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
    for metric, scorer, pick in (("cider", Cider(), lambda s: s), ("bleu4", Bleu(4), lambda s: s[3]),
                                 ("rouge_l", Rouge(), lambda s: s)):
        m = get_metric(metric)
        items = [m.item(c, refs) for c, refs in CAPTIONS]
        assert [cand for cand, _ in items] == [res_t[i][0] for i in range(len(CAPTIONS))]
        assert [r for _, r in items] == [gts_t[i] for i in range(len(CAPTIONS))]
        kwargs = {"verbose": 0} if metric == "bleu4" else {}
        reference, _ = scorer.compute_score(gts_t, res_t, **kwargs)
        assert m.aggregate(items) == pytest.approx(pick(reference), rel=1e-12)


@pytest.fixture(scope="module")
def photo_pair():
    import skimage.data

    clean = skimage.data.astronaut()[:256, :256]
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


def test_psnr_ssim_match_scikit_image_rgb(photo_pair):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    noisy, clean = photo_pair
    assert get_metric("psnr").item(noisy, clean) == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=255))
    ref = structural_similarity(clean, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert get_metric("ssim").item(noisy, clean) == pytest.approx(ref, rel=1e-9)


def test_psnr_ssim_y_channel_matches_matlab_convention(photo_pair):
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    noisy, clean = photo_pair
    y = lambda im: rgb2ycbcr(im)[..., 0]  # noqa: E731  (MATLAB rgb2ycbcr luma, 16..235)
    assert get_metric("psnr").item(noisy, clean, color="y") == pytest.approx(
        peak_signal_noise_ratio(y(clean), y(noisy), data_range=255))
    assert get_metric("ssim").item(noisy, clean, color="y") == pytest.approx(
        structural_similarity(y(clean), y(noisy), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=255), rel=1e-9)
    assert math.isinf(get_metric("psnr").item(clean, clean, color="y"))


def test_circular_accuracy_needs_every_copy():
    m = get_metric("circular_accuracy")
    items = [m.item("A", "A", group=1), m.item("B", "C", group=1), m.item("D", "D", group=2), m.item("d", "D", group=2)]
    assert m.aggregate(items) == 0.5


def test_clustered_stderr_widens_for_correlated_clusters():
    values = [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    iid = mean_stderr(values)
    clustered = mean_stderr(values, clusters=[i // 3 for i in range(12)])
    assert clustered > iid
    import statistics

    assert iid == pytest.approx(statistics.stdev(values) / math.sqrt(12))


def test_paired_difference_interval():
    a = [0, 1, 0, 1, 1, 0, 1, 0]
    delta, lo, hi = paired_difference(a, a)
    assert delta == 0 and math.isnan(lo) is False and lo == hi == 0
    delta, lo, hi = paired_difference(a, [1] * 8)
    assert delta == pytest.approx(0.5) and lo < 0.5 < hi


TRICKY_CAPTIONS = [
    "It's 5.5 meters tall.", 'A mother-in-law\'s "big" dog...', "The U.S.A. flag; waving -- fast!",
    "I can't, won't: they're   here", "Birds chirp 100% of the time & cars honk", "rain falls on a tin roof\n",
    "o'clock rock'n'roll", "A man, a plan... a canal: Panama!", "Water drips (slowly) into a [metal] bucket.",
]


@pytest.mark.skipif(shutil.which("java") is None, reason="PTBTokenizer reference needs Java")
def test_pure_python_tokenizer_equals_java_ptb_tokenizer():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from harness.metrics.caption import ptb_tokenize

    reference = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(TRICKY_CAPTIONS)})
    assert [ptb_tokenize(s) for s in TRICKY_CAPTIONS] == [reference[i][0] for i in range(len(TRICKY_CAPTIONS))]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_matches_pycocoevalcap():
    from pycocoevalcap.meteor.meteor import Meteor

    m = get_metric("meteor")
    items = [m.item(c, refs) for c, refs in CAPTIONS]
    gts = {i: refs for i, (_, refs) in enumerate(items)}
    res = {i: [c] for i, (c, _) in enumerate(items)}
    assert m.aggregate(items) == pytest.approx(Meteor().compute_score(gts, res)[0], rel=1e-9)


def test_spice_says_why_it_is_unavailable():
    m = get_metric("spice")
    with pytest.raises(RuntimeError, match="unavailable offline"):
        m.aggregate([m.item("a dog", ["a dog"])])
