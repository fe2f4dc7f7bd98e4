"""model=hf on tiny random-weight checkpoints built in the test: prompts, media tokens, errors, fingerprint."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.api import AudioPart, GenerationConfig, Message, ModelUnavailable, Request
from harness.cli import main
from harness.evaluate import evaluate
from harness.media import SAMPLE_RATE, load_audio, load_video_frames
from harness.models import build_model
from tests.models.builders import IMAGE_TOKENS


def hf(path, **args):
    return {"name": "tiny", "adapter": "hf", "args": {"path": str(path), **args}}


@pytest.mark.parametrize("task", ["omniworld_image", "omniworld_video"])
def test_vlm_prompt_carries_one_placeholder_per_image_token(tiny_llava, tmp_path, task):
    summary = evaluate(task, hf(tiny_llava), output_dir=tmp_path, limit=2, batch_size=2, cache=False,
                       rebuild_leaderboards=False)
    assert summary.results["status"] == "complete"
    outcome = summary.outcomes[0]
    assert outcome.n_errors == 0 and len(outcome.samples) == 2
    requests = {r.doc_id: r for r in map(outcome.task.build_request, outcome.task.docs())}
    for sample in outcome.samples:
        (part,) = requests[sample.doc_id].media()
        # an image-only processor sees a video as its sampled frames, one image each
        images = 1 if part.type == "image" else len(load_video_frames(part.path, part.fps, part.max_frames)[0])
        assert sample.response.stats["image_tokens"] == images * IMAGE_TOKENS
        assert sample.response.stats["new_tokens"] > 0


def test_whisper_family_transcribes_an_asr_task(tiny_whisper, tmp_path):
    summary = evaluate("librispeech_test_clean", hf(tiny_whisper), output_dir=tmp_path, limit=2, batch_size=2,
                       cache=False, rebuild_leaderboards=False)
    outcome = summary.outcomes[0]
    assert summary.results["status"] == "complete" and outcome.n_errors == 0
    assert all(s.response.text.strip() for s in outcome.samples)  # random weights: words, not the transcript
    (text_only,) = build_model(hf(tiny_whisper)).generate([Request("t", "q", (Message.user("hello"),))])
    assert text_only.error == "model tiny takes no text-only input (t/q)"


def test_audio_text_model_prompt_carries_its_audio_tokens(tiny_qwen2_audio, tmp_path):
    summary = evaluate("librispeech_test_clean", hf(tiny_qwen2_audio), output_dir=tmp_path, limit=2, batch_size=2,
                       cache=False, rebuild_leaderboards=False)
    outcome = summary.outcomes[0]
    assert summary.results["status"] == "complete" and outcome.n_errors == 0
    requests = {r.doc_id: r for r in map(outcome.task.build_request, outcome.task.docs())}
    for sample in outcome.samples:
        (part,) = requests[sample.doc_id].media()
        seconds = len(load_audio(part.path)) / SAMPLE_RATE
        # Qwen2-Audio: 100 mel frames a second, halved by the encoder's stride and again by its pooling
        assert abs(sample.response.stats["audio_tokens"] - 25 * seconds) <= 1


@pytest.fixture(scope="module")
def qwen2_model(tiny_qwen2):
    return build_model(hf(tiny_qwen2))


def test_a_medium_the_model_does_not_take_is_a_per_sample_error(tiny_llava, qwen2_model):
    audio = Request("t", "clip", (Message.user(AudioPart("x.wav"), "what is said?"),))
    text = Request("t", "q", (Message.user("hello"),), GenerationConfig(max_new_tokens=2))
    vlm_error, = build_model(hf(tiny_llava)).generate([audio])
    assert vlm_error.error == "model tiny takes no audio (t/clip)"
    lm_error, lm_ok = qwen2_model.generate([audio, text])
    assert lm_error.error == "model tiny takes no audio (t/clip)" and lm_ok.error is None and lm_ok.text


def test_batched_left_padded_generation_equals_one_by_one(qwen2_model):
    model = qwen2_model
    gen = GenerationConfig(max_new_tokens=6)
    requests = [Request("t", str(i), (Message.user(q),), gen) for i, q in enumerate(["hi", "a much longer question here"])]
    batched = [r.text for r in model.generate(requests)]
    assert batched == [model.generate([r])[0].text for r in requests]


def test_stop_strings_cut_the_answer(qwen2_model):
    model = qwen2_model
    full = model.generate([Request("t", "0", (Message.user("hi"),), GenerationConfig(max_new_tokens=8))])[0].text
    stop = full[2:4]
    cut = model.generate([Request("t", "0", (Message.user("hi"),), GenerationConfig(max_new_tokens=8, until=(stop,)))])[0]
    assert cut.text == full[:full.find(stop)]


def test_fingerprint_follows_the_weights(tiny_qwen2, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_qwen2, copy)
    assert build_model(hf(copy)).fingerprint() == build_model(hf(tiny_qwen2)).fingerprint()
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert build_model(hf(copy)).fingerprint() != build_model(hf(tiny_qwen2)).fingerprint()


def _run_fails(tmp_path, capsys, path, *extra):
    """Runs the command line; it must fail (a nonzero status, returned or raised) and mark no run complete."""
    try:
        code = main(["run", "task=gpqa_diamond", "model=hf", f"model.args.path={path}", f"output_dir={tmp_path}",
                     "limit=1", "progress=false", *extra])
    except SystemExit as stop:
        code = stop.code
    assert code not in (0, None)
    statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("runs/*/status.json")]
    assert "complete" not in statuses
    return capsys.readouterr().err


def test_missing_folder_fails_the_run_naming_model_and_fix(tmp_path, capsys):
    err = _run_fails(tmp_path, capsys, tmp_path / "nowhere")
    assert f"model hf: no folder {tmp_path / 'nowhere'}" in err and "model.args.path=" in err


def test_unloadable_checkpoint_fails_the_run(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    err = _run_fails(tmp_path, capsys, tmp_path / "ckpt")
    assert f"model hf: could not load the config from {tmp_path / 'ckpt'}" in err


def test_corrupt_weights_fail_the_run_once_not_every_sample(tiny_qwen2, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_qwen2, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    err = _run_fails(tmp_path, capsys, broken)
    assert f"model hf: could not load the weights from {broken}" in err


def test_checkpoint_with_its_own_code_needs_trust_remote_code(tmp_path, capsys):
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "my_model", "auto_map": {"AutoConfig": "configuration_my.MyConfig"}}))
    (folder / "configuration_my.py").write_text("raise SystemExit('custom code must not run')\n")
    with pytest.raises(ModelUnavailable, match="pass model.args.trust_remote_code=true"):
        build_model(hf(folder))
    err = _run_fails(tmp_path, capsys, folder)
    assert "model hf: the checkpoint in" in err and "trust_remote_code=true" in err
