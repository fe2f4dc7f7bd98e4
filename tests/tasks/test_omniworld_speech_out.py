"""omniworld speech output and the unimoe adapter's speech path: oracle near 0 WER, noise at 100, the tiny
model's speech scored end to end, and what cannot become speech recorded per sample."""

from __future__ import annotations

import itertools

import pytest

from harness.api import GenerationConfig, Message, Request, TextPart
from harness.evaluate import evaluate
from harness.models import build_model
from unimoe.tokenizer import SPECIAL_IDS

pytest.importorskip("faster_whisper", reason="speech output is scored by faster-whisper (Whisper tiny.en)")
pytest.importorskip("hibari", reason="the oracle's reference speech comes from hibari-tts")

TINY = {"name": "unimoe_tiny", "adapter": "unimoe", "args": {
    "checkpoint": "unimoe/weights/unimoe_tiny", "preset": "tiny_omni", "tts_init": "random"}}


def wer(summary) -> dict:
    return summary.results["tasks"]["omniworld_speech_out"]


def test_oracle_is_understood_and_noise_is_not(tmp_path):
    oracle = wer(evaluate("omniworld_speech_out", "oracle", output_dir=tmp_path, limit=3, rebuild_leaderboards=False))
    assert oracle["n_errors"] == 0 and oracle["metrics"]["wer_mean"]["value"] <= 0.34
    noise = wer(evaluate("omniworld_speech_out", "random", output_dir=tmp_path, limit=3, rebuild_leaderboards=False))
    assert noise["metrics"]["wer_mean"]["value"] >= 0.9


def test_untrained_speech_head_speaks_end_to_end(tmp_path):
    summary = evaluate("omniworld_speech_out", TINY, output_dir=tmp_path, limit=2, rebuild_leaderboards=False)
    rec = wer(summary)
    samples = summary.outcomes[0].samples
    spoken = [s for s in samples if s.error is None]
    assert all("no speech" in s.error for s in samples if s.error)  # silence is a sample's result, not a crash
    assert rec["metrics"]["wer_mean"]["n"] == len(spoken)
    for s in spoken:
        assert s.response.audio.endswith(".wav") and s.response.stats["speech_codes"] > 0


def _request(text: str, max_codes: int = 8) -> Request:
    return Request(task="t", doc_id="d1", messages=(Message("user", (TextPart(text),)),), output="audio",
                   generation=GenerationConfig(max_new_tokens=max_codes))


def test_without_a_speech_head_each_sample_says_so():
    adapter = build_model({**TINY, "args": {**TINY["args"], "tts_init": "checkpoint", "tts_checkpoint": None}})
    [response] = adapter.generate([_request("red circle")])
    assert response.audio is None and response.error.startswith("sample d1: ") and "tts_checkpoint" in response.error


def test_spans_written_by_the_model_are_spoken(monkeypatch):
    adapter = build_model({**TINY, "args": {**TINY["args"], "speech_from": "model"}})
    adapter.generate([_request("warm up", 1)])  # loads the model

    class Result:  # the three greedy requests run as one padded batch: one row each
        def __init__(self, rows):
            self.tokens, self.texts, self.finish_reasons = rows, ["..."] * len(rows), ["eos"] * len(rows)

    tok = adapter._processor.tokenizer
    outputs = ([
        [SPECIAL_IDS["<|speech_start|>"], *tok.encode("Brian", add_special_tokens=False),
         SPECIAL_IDS["<|speech_prompt|>"], *tok.encode("red circle", add_special_tokens=False),
         SPECIAL_IDS["<|speech_end|>"], SPECIAL_IDS["<|im_end|>"]],
        tok.encode("no speech here", add_special_tokens=False),
        [SPECIAL_IDS["<|speech_start|>"], SPECIAL_IDS["<|speech_prompt|>"], SPECIAL_IDS["<|speech_end|>"]],
    ])
    monkeypatch.setattr(adapter._model, "generate_batch", lambda *a, **k: Result(outputs))
    spoken, no_span, no_text = adapter.generate([_request("say it"), _request("say it"), _request("say it")])
    assert spoken.error is None or "silence" in spoken.error
    assert spoken.stats["speech_segments"] == 1 and spoken.stats["new_tokens"] > 0
    assert "no <speech start>" in no_span.error and "no text" in no_text.error


def test_the_shipped_speech_head_is_understood(tmp_path):
    """The trained tiny pair (README: Speech output) says phrases it never heard so that Whisper tiny.en gets
    most words (WER x100 33.3 on all 36 held-out phrases, 33.3 on these 3: 3 of 9 words wrong; the untrained
    head scores 100). The bound leaves room for two more wrong words (a CPU whose kernels round differently)."""
    summary = evaluate("omniworld_speech_out", "unimoe_tiny", output_dir=tmp_path, limit=3, rebuild_leaderboards=False)
    rec = wer(summary)
    assert rec["n_errors"] == 0 and rec["metrics"]["wer_mean"]["value"] <= 60  # x100


def test_the_phrases_to_say_are_never_heard_in_training():
    """Held out by construction: new combinations of words that training does use."""
    from harness.catalog import build_task, load_entry
    from unimoe.train import tts as train_tts
    from unimoe.train.tts_phrases import SLOTS, WORDS, held_out_phrases, train_phrases

    task = build_task(load_entry("omniworld_speech_out"), data="full")
    said = [doc["text"] for doc in task.docs()]
    assert said == list(held_out_phrases()) and len(set(said)) == len(said) >= 30
    everything = train_phrases(sum(1 for _ in itertools.product(*SLOTS)) - len(said))
    assert not set(said) & set(everything)  # disjoint from every phrase training can draw
    heard = train_phrases(train_tts.DEFAULTS["phrases"])
    assert {w for p in said for w in p.split()} <= {w for p in heard for w in p.split()} <= set(WORDS)
    assert 40 <= len(WORDS) <= 120 and len(heard) >= 1000
