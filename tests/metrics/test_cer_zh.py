"""Chinese CER: the normaliser on worked examples, the corpus rate against jiwer on the same strings."""

from __future__ import annotations

import pytest

from harness.metrics.asr_zh import normalize_chinese
from harness.metrics.base import get_metric

NORMALISED = [
    # (text, expected, why)
    ("今天是2019年3月5日，气温25.5度。", "今天是二零一九年三月五日气温二十五点五度",
     "year read digit by digit, month/day and decimals as numbers, Chinese punctuation removed"),
    ("电话：13812345678！", "电话一三八一二三四五六七八", "7+ digit runs are read digit by digit"),
    ("我有３个ＡＰＰ，\u3000共1,000元", "我有三个app共一千元",
     "full-width digits/letters/comma and the ideographic space to half-width; thousands separator dropped"),
    ("<|zh|>你好 世界", "你好世界", "special tokens and spaces removed"),
    ("他说“OK”吧?", "他说ok吧", "curly quotes and ASCII '?' are punctuation; letters lower-cased"),
    ("概率是50%", "概率是百分之五十", "percentages"),
    ("我有3个苹果和1/2个梨", "我有三个苹果和二分之一个梨", "cardinals and fractions"),
]


@pytest.mark.parametrize("text,expected,why", NORMALISED, ids=[r[1] for r in NORMALISED])
def test_normaliser(text, expected, why):
    assert normalize_chinese(text) == expected, why


def test_numbers_can_be_left_alone():
    assert normalize_chinese("我有3个苹果。", numbers=False) == "我有3个苹果"


# (reference transcript, recogniser-style hypothesis): written for this test, AISHELL-like sentences
PAIRS = [
    ("甚至出现交易几乎停滞的情况", "甚至出现交易几乎停止的情况。"),
    ("一二线城市虽然也处于调整中", "一二线城市虽然也处于调整中"),
    ("但因为聚集了过多公共资源", "但因为聚集了过多的公共资源！"),
    ("今年三月份的成交量为两千套", "今年3月份的成交量为2000套"),
    ("他的电话号码是一三八一二三四五六七八", "他的电话号码是：138 1234 5678"),
    ("百分之三十的受访者表示满意", "30%的受访者表示满意。"),
    ("我们明天上午十点见面", "我们明天上午十点半见"),
]


def test_corpus_cer_matches_jiwer_on_the_normalised_strings():
    import jiwer

    m = get_metric("cer_zh")
    ours = m.aggregate([m.item(hyp, ref) for ref, hyp in PAIRS])
    refs = [normalize_chinese(r) for r, _ in PAIRS]
    hyps = [normalize_chinese(h) for _, h in PAIRS]
    theirs = jiwer.cer(refs, hyps)  # jiwer pools character edits over the whole corpus
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert 0 < ours < 0.2
    # corpus-level, not a mean of per-utterance rates
    per_utt = [jiwer.cer(r, h) for r, h in zip(refs, hyps)]
    assert ours != pytest.approx(sum(per_utt) / len(per_utt))


def test_known_edits():
    m = get_metric("cer_zh")
    # "停滞" -> "停止": one substitution over 13 characters; punctuation in the hypothesis costs nothing
    assert m.item("甚至出现交易几乎停止的情况。", "甚至出现交易几乎停滞的情况") == (1, 13)
    # "2000" is read "二千" by cn2an, the transcript says "两千": one substitution
    assert m.item("成交量为2000套", "成交量为两千套") == (1, 7)
    assert m.aggregate([(1, 13), (0, 7)]) == pytest.approx(1 / 20)
    assert m.item("", "你好") == (2, 2)
