"""Chinese speech generation (Seed-TTS test-zh, test-hard, TinyStories-zh): the meta.lst / hardcase.lst / row
loaders, the bare-text request, run_wer.py's Chinese scoring (zhconv to simplified on the recogniser's output,
zhon + ASCII punctuation deleted, characters, per-utterance CER mean x100), end to end through the shipped
Paraformer engine with FunASR and, when absent, zhconv replaced by test-only stand-ins, and the clear per-sample
error when FunASR is missing."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import pytest

from harness.catalog import load_entry
from harness.judges.asr import ParaformerASR, register_asr
from harness.metrics.base import get_metric
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs

CHINESE = ["seedtts_test_zh", "seedtts_test_hard", "tinystories_zh_tts"]
PAPER = {"seedtts_test_zh": 3.10, "seedtts_test_hard": 2.67, "tinystories_zh_tts": 7.02}

# What the stand-in recogniser "hears" in each oracle clip: the target as Paraformer might write it (traditional
# characters, ASCII or no punctuation, spaces), all of which the protocol's normalisation must remove.
HEARD = {
    "简单地说，这相当于把消费领域市场拱手相让了。": "簡單地說 這相當於把消費領域市場拱手相讓了",
    "他在2020年买了一部iPhone，还说“很好用”！": "他在2020年買了一部 iPhone,還說\"很好用\"!",
    "请问，去火车站怎么走？往前走三百米就到了。": "請問去火車站怎麼走往前走三百米就到了",
    "会议定于下午三点开始，请准时参加……": "會議定於下午三點開始請準時參加",
    "四是四，十是十，十四是十四，四十是四十。": "四是四十是十十四是十四四十是四十",
    "吃葡萄不吐葡萄皮，不吃葡萄倒吐葡萄皮。": "吃葡萄不吐葡萄皮 不吃葡萄倒吐葡萄皮",
    "好好好好好好好，我知道了，知道了知道了。": "好好好好好好好我知道了知道了知道了",
    "红凤凰粉凤凰，红粉凤凰花凤凰。": "紅鳳凰粉鳳凰紅粉鳳凰花鳳凰",
    "从前，有一个叫莉莉的小女孩。她喜欢在公园里玩她的红色皮球。":
        "從前有一個叫莉莉的小女孩她喜歡在公園裡玩她的紅色皮球",
    "有一天，一只小鸟在大树下找到了一把闪亮的钥匙。小鸟把钥匙送给了它的朋友——小猫。":
        "有一天一隻小鳥在大樹下找到了一把閃亮的鑰匙小鳥把鑰匙送給了它的朋友小貓",
    "汤姆有一辆大红卡车。\n\n他说：“我们去农场吧！”妈妈笑了，他们一起出发了。":
        "湯姆有一輛大紅卡車 他說我們去農場吧 媽媽笑了他們一起出發了",
}

# The traditional -> simplified pairs the stand-in zhconv knows (the real table is zhconv's, used when installed).
_T2S = dict(zip("簡單說這於當費領場讓買還請問車麼會議點開準時參紅鳳從個喜歡園裡隻鳥樹閃鑰匙給貓湯輛卡農媽們發話",
                "简单说这于当费领场让买还请问车么会议点开准时参红凤从个喜欢园里只鸟树闪钥匙给猫汤辆卡农妈们发话"))


class _StandInZhconv:
    @staticmethod
    def convert(text: str, locale: str) -> str:
        assert locale == "zh-cn"
        return "".join(_T2S.get(ch, ch) for ch in text)


class _SidecarFunASR:
    """A FunASR AutoModel stand-in: ``generate`` returns the transcript a sidecar JSON file holds for a clip."""

    def __init__(self, sidecar: str):
        self.heard = json.loads(Path(sidecar).read_text(encoding="utf-8"))

    def generate(self, input: str, batch_size_s: int) -> list[dict]:
        return [{"key": Path(input).stem, "text": self.heard[str(Path(input).resolve())]}]


def _sidecar_paraformer(sidecar: str, model: str = "paraformer-zh", **kw) -> ParaformerASR:
    """The shipped Paraformer engine with its loaded model replaced: its transcribe() and zhconv step run."""
    asr = ParaformerASR(model=model, **kw)
    zhconv = __import__("zhconv") if importlib.util.find_spec("zhconv") else _StandInZhconv
    asr.__dict__["_loaded"] = (_SidecarFunASR(sidecar), zhconv)
    return asr


@pytest.fixture
def sidecar_asr(tmp_path):
    """Registers the test-only engine and writes the sidecar for the oracle clips of a task."""
    register_asr("zh_sidecar", _sidecar_paraformer)

    def use(name: str, heard: dict[str, str] | None = None):
        task = load_task(name)
        sidecar = tmp_path / f"{name}-heard-{len(list(tmp_path.glob('*.json')))}.json"  # new file: a new engine
        mapping = {}
        for doc in sample_docs(task):
            clip = str(Path(task.build_request(doc).reference.audio).resolve())
            mapping[clip] = (HEARD if heard is None else heard).get(task.target(doc), "")
        sidecar.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
        cfg = load_entry(name)
        return load_task(name, options={**cfg.options, "asr": {"engine": "zh_sidecar", "sidecar": str(sidecar)}})

    return use


# ------------------------------------------------------------------------------------------ loading, requests


@pytest.mark.parametrize("name", CHINESE)
def test_request_is_the_bare_text_asks_for_audio_and_defaults_to_paraformer(name):
    task = load_task(name)
    docs = sample_docs(task)
    assert len(docs) >= 3
    for doc in docs:
        request = task.build_request(doc)
        assert request.output == "audio" and request.media() == []
        assert request.text() == task.target(doc)
    cfg = task.config
    assert cfg.paper_score == PAPER[name] and cfg.primary_metric == "wer_mean" and cfg.scale == 100.0
    assert cfg.metric_options["wer_mean"] == {"lang": "zh"}
    assert cfg.options["asr"] == {"engine": "paraformer", "model": "paraformer-zh"}


def test_seedtts_zh_meta_list_rows_and_prompt_snapshot():
    task = load_task("seedtts_test_zh")
    docs = sample_docs(task)
    assert [task.doc_id(d) for d in docs][:2] == ["10002287-00000095", "10003219-00000032"]
    assert docs[0] == {"utt": "10002287-00000095", "prompt_text": "在此奉劝大家别乱打美白针。",
                       "prompt_wav": "prompt-wavs/10002287-00000094.wav",
                       "text": "简单地说，这相当于把消费领域市场拱手相让了。"}
    assert task.build_request(docs[1]).text() == "他在2020年买了一部iPhone，还说“很好用”！"
    assert (task.media_root / docs[0]["prompt_wav"]).is_file()


def test_seedtts_hard_reads_hardcase_lst():
    task = load_task("seedtts_test_hard")
    assert task.config.options["list_file"] == "hardcase.lst"
    docs = sample_docs(task)
    assert [d["utt"] for d in docs] == [f"hardcase_{i:05d}" for i in range(4)]
    assert task.build_request(docs[0]).text() == "四是四，十是十，十四是十四，四十是四十。"


def test_tinystories_zh_rows_are_numbered_by_position():
    task = load_task("tinystories_zh_tts")
    docs = sample_docs(task)
    assert [task.doc_id(d) for d in docs] == ["0", "1", "2"] and set(docs[0]) == {"text", "id"}
    assert "\n\n" in docs[2]["text"]


def test_group_lists_the_chinese_sets():
    import yaml

    group = yaml.safe_load(Path("configs/task/speech_generation.yaml").read_text(encoding="utf-8"))
    assert set(CHINESE) <= set(group["tasks"]) and len(group["tasks"]) == 7


# ------------------------------------------------------------------------------------------ zh normalisation

ZH_CASES = [  # (hypothesis, reference, expected CER): run_wer.py, lang zh
    ("今天天气很好", "今天，天气很好！", 0.0),                            # full-width punctuation deleted
    ("今天天气很好", "今天，天气很好。“”：；？……——（）《》、", 0.0),        # the zhon hanzi set, all of it
    ("今天,天气很好!", "今天天气很好", 0.0),                               # ASCII punctuation too
    ("今天 天气 很好", "今天天气很好", 0.0),                               # spaces are not characters
    ("他在二零二零年", "他在2020年", 4 / 7),                              # digits kept as written: 4 substitutions
    ("他在2020年", "他在2020年", 0.0),
    ("買了iPhone", "买了iPhone", 1 / 8),                                 # the metric itself does not convert
    ("我用ai", "我用AI", 2 / 4),                                        # Latin letters count one by one, case kept
    ("", "红凤凰", 1.0),
]


@pytest.mark.parametrize("hyp, ref, expected", ZH_CASES)
def test_zh_normalisation_cases(hyp, ref, expected):
    assert get_metric("wer_mean").item(hyp, ref, lang="zh") == pytest.approx(expected)


@pytest.mark.parametrize("hyp, ref, expected", ZH_CASES)
def test_zh_cases_agree_with_run_wer_written_out(hyp, ref, expected):
    pytest.importorskip("jiwer")
    from tests.tasks.test_tts_family import _reference_wer

    if hyp.strip():
        assert _reference_wer(hyp, ref, "zh") == pytest.approx(expected)


def test_paraformer_engine_converts_its_output_to_simplified(tmp_path, sidecar_asr):
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"")
    sidecar = tmp_path / "s.json"
    sidecar.write_text(json.dumps({str(clip.resolve()): "紅鳳凰，說話"}, ensure_ascii=False), encoding="utf-8")
    register_asr("zh_sidecar", _sidecar_paraformer)
    from harness.judges.asr import build_asr

    asr = build_asr({"engine": "zh_sidecar", "sidecar": str(sidecar)})
    assert asr.transcribe(str(clip)) == "红凤凰，说话"
    assert asr.identity() == {"kind": "asr", "engine": "funasr", "model": "paraformer-zh",
                              "postprocess": "zhconv zh-cn"}


# ------------------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("name", CHINESE)
def test_oracle_scores_zero_through_the_recogniser_and_a_deaf_one_100(name, sidecar_asr):
    task = sidecar_asr(name)
    best = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert best["wer_mean"].value == 0.0 and best["wer_mean"].n == len(sample_docs(task))
    deaf = sidecar_asr(name, heard={})  # hears nothing in any clip
    worst = deaf.aggregate(answer_all(deaf, lambda doc: oracle_response(deaf, doc)))
    assert worst["wer_mean"].value == 100.0


def test_score_is_the_mean_of_utterance_cers_x100(sidecar_asr):
    heard = dict(HEARD)
    heard["四是四，十是十，十四是十四，四十是四十。"] = "四是四十是十十四是十四四是是四十"    # 1 of 16 wrong
    heard["红凤凰粉凤凰，红粉凤凰花凤凰。"] = "紅鳳凰粉鳳凰"                            # 7 of 13 deleted
    task = sidecar_asr("seedtts_test_hard", heard=heard)
    samples = answer_all(task, lambda doc: oracle_response(task, doc))
    assert sorted(round(s.items["wer_mean"], 6) for s in samples) == [0.0, 0.0, round(1 / 16, 6), round(7 / 13, 6)]
    assert task.aggregate(samples)["wer_mean"].value == pytest.approx(100 * (1 / 16 + 7 / 13) / 4)


@pytest.mark.parametrize("name", CHINESE)
def test_validate_with_the_stand_in_recogniser(name, tmp_path, sidecar_asr):
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    task = sidecar_asr(name)
    cfg = dataclasses.asdict(task.config)
    summary = evaluate(cfg, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    assert validation_problems(summary) == {name: []}
    assert summary.results["tasks"][name]["judge"]["engine"] == "funasr"


def test_without_funasr_each_sample_fails_naming_the_install_and_the_run_goes_on(tmp_path):
    from harness.evaluate import evaluate
    from harness.models.reference import OracleModel

    if importlib.util.find_spec("funasr") is not None:
        pytest.skip("funasr is installed here")
    summary = evaluate("seedtts_test_zh", OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    (outcome,) = summary.outcomes
    assert outcome.fatal.startswith("every sample failed") and summary.results["status"] == "failed"  # no metrics: not complete
    assert len(outcome.samples) == 4
    assert all("pip install funasr modelscope" in s.error for s in outcome.samples)
    assert math.isnan(outcome.metrics["wer_mean"].value)
