"""The unimoe adapter: real media decoding, generation, routing statistics per modality in results."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.evaluate import evaluate
from harness.models import build_model
from harness.models.unimoe import CheckpointMissing
from harness.models.weights import folder_digest
from unimoe.config import UniMoEConfig


def test_missing_checkpoint_says_what_to_download(tmp_path, capsys):
    with pytest.raises(CheckpointMissing, match="HIT-TMG/Uni-MoE-2.0-Omni"):
        build_model({"name": "unimoe2_omni", "adapter": "unimoe", "args": {"checkpoint": None}})
    with pytest.raises(CheckpointMissing, match="holds no config.json"):
        build_model({"name": "unimoe2_omni", "adapter": "unimoe", "args": {"checkpoint": str(tmp_path)}})
    assert main(["run", "task=gpqa_diamond", "model=unimoe2_omni", f"output_dir={tmp_path}"]) == 2
    assert "Download HIT-TMG/Uni-MoE-2.0-Omni" in capsys.readouterr().err


def test_tiny_model_on_videomme_reports_routing_by_modality(tmp_path):
    summary = evaluate("videomme", "unimoe_tiny", output_dir=tmp_path, limit=2, rebuild_leaderboards=False)
    rec = summary.results["tasks"]["videomme"]
    assert rec["n_errors"] == 0 and rec["metrics"]["accuracy"]["n"] == 2
    routing = rec["routing"]["summary"]
    assert routing["video"]["tokens"] > 0 and routing["text"]["tokens"] > 0
    layers = len(routing["text"]["expert_share"])
    assert layers == UniMoEConfig.preset("tiny_omni").num_hidden_layers and all(abs(sum(layer) - 1) < 1e-6 for layer in routing["video"]["expert_share"])
    sample = summary.outcomes[0].samples[0]
    assert sample.response.stats["finish_reason"] in ("eos", "length", "stop")


@pytest.mark.parametrize("whole", [True, False])
def test_fingerprint_follows_weight_content_not_file_sizes(tmp_path, monkeypatch, whole):
    """Two trainings write files of equal names and sizes; cached answers of one must not serve the other."""
    import harness.models.weights as adapter

    if not whole:  # the sampled digest of multi-GB releases
        monkeypatch.setattr(adapter, "FULL_HASH_LIMIT", 0)
    digests = []
    for value in (b"\x00", b"\x01"):
        root = tmp_path / f"ckpt{value[0]}"
        root.mkdir()
        (root / "config.json").write_text("{}")
        (root / "model.safetensors").write_bytes(bytes(300_000) + value + bytes(10))
        digests.append(folder_digest(root))
    assert digests[0] != digests[1]
    assert folder_digest(tmp_path / "ckpt0") == digests[0]


def _clip_with_sound(path, sound: bool):
    import numpy as np

    from tasks.fixtures.writers import write_video, write_video_with_audio

    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    if not sound:
        return write_video(path, frames, 2)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(32_000) / 16_000)).astype(np.float32)
    return write_video_with_audio(path, frames, 2, tone, 16_000)


def _adapter(**args):
    return build_model({"name": "unimoe_tiny", "adapter": "unimoe",
                        "args": {"checkpoint": "unimoe/weights/unimoe_tiny", "preset": "tiny_omni", **args}})


def _shape(parts):
    """Kinds in order; text as itself."""
    return [p if isinstance(p, str) else type(p).__name__ for p in parts]


def test_a_video_asked_with_its_audio_brings_the_soundtrack(tmp_path):
    from harness.api import Message, Request, VideoPart

    loud, silent = _clip_with_sound(tmp_path / "loud.mp4", True), _clip_with_sound(tmp_path / "silent.mp4", False)
    adapter = _adapter()
    request = Request("t", "0", (Message.user(VideoPart(str(loud), fps=2, use_audio=True), "Q?",
                                              VideoPart(str(silent), fps=2, use_audio=True),
                                              VideoPart(str(loud), fps=2)),))
    parts = adapter._conversation(request)[0]["content"]
    assert _shape(parts) == ["Video", "Audio", "Q?", "Video", "Video"]  # silent: no audio; not asked: none
    assert 32_000 <= parts[1].samples.size < 34_000  # the 2 s soundtrack at 16 kHz (AAC pads its last frame)


def test_lmms_eval_layout_is_the_released_wrappers_prompt(tmp_path):
    """First image, first audio (a video's soundtrack counts, in request order), first video, each on its own
    line, then the text without <image> tags; the rest dropped; stop strings ignored; its own fingerprint."""
    import numpy as np

    from harness.api import AudioPart, ImagePart, Message, Request, VideoPart
    from tasks.fixtures.writers import photo, write_png, write_wav

    loud = _clip_with_sound(tmp_path / "loud.mp4", True)
    images = [write_png(tmp_path / f"{i}.png", photo(name, (32, 32))) for i, name in enumerate(("astronaut", "coffee"))]
    speech = write_wav(tmp_path / "a.wav", np.zeros(8_000, dtype=np.float32), 16_000)
    request = Request("t", "0", (Message.user("Look <image>at this. ", ImagePart(str(images[0])),
                                              VideoPart(str(loud), fps=2, use_audio=True), AudioPart(str(speech)),
                                              ImagePart(str(images[1])), "Answer."),))
    released = _adapter(layout="lmms_eval", stop_strings=False)
    parts = released._conversation(request)[0]["content"]
    assert _shape(parts) == ["Image", "\n", "Audio", "\n", "Video", "\n", "Look at this. Answer."]
    assert parts[2].samples.size >= 32_000  # the video's 2 s soundtrack came first (the WAV is 0.5 s)
    inline = _adapter()
    assert _shape(inline._conversation(request)[0]["content"]) == [
        "Look <image>at this. ", "Image", "Video", "Audio", "Audio", "Image", "Answer."]
    assert released.fingerprint() != inline.fingerprint() == _adapter(layout="inline").fingerprint()
    with pytest.raises(ValueError, match="layout"):
        _adapter(layout="sideways")


@pytest.mark.parametrize("stop_strings, expected", [(True, ("\n",)), (False, ())])
def test_stop_strings_can_be_ignored_as_the_released_wrapper_does(monkeypatch, stop_strings, expected):
    from harness.api import GenerationConfig, Message, Request
    from unimoe.omni import UniMoEOmni

    seen = []
    original = UniMoEOmni.generate_batch

    def spy(self, *args, **kwargs):
        seen.append(kwargs["stop_strings"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UniMoEOmni, "generate_batch", spy)
    adapter = _adapter(stop_strings=stop_strings)
    adapter.generate([Request("t", "0", (Message.user("Hi"),), GenerationConfig(max_new_tokens=2, until=("\n",)))])
    assert seen == [expected]
