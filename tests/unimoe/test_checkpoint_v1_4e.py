"""The Uni-MoE v1 4-expert release (``Uni-MoE-speech-base`` + the ``Uni-MoE-speech-e2`` LoRA fine-tune) and the
v1 towers from their own Hugging Face folders (CLIP ViT-L/14-336, Whisper-small).

The fake release below is written in the released file layout (architecture report §3.2, §5.3; released
``Uni_MoE_speech/model/all_builder.py``, ``train/train.py``): a LLaMA base with the 4 experts in
``mlp.experts.{i}`` and gates ``mlp.gate``, sharded ``.bin`` with an index; a fine-tune folder with a LLaVA
``config.json``, ``non_lora_trainables.bin`` (trainer prefixes), a PEFT adapter (``adapter_model.bin`` +
``adapter_config.json``), ``mm_audio_aligner.bin`` and ``mlp_gates.bin``. The towers are saved by transformers
itself as the hub folders are: a full ``CLIPModel`` (text half included) and a ``WhisperForConditionalGeneration``.
Expected weights are computed here, not by the loader: a merged linear is ``W + (alpha / r) · B @ A``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.unimoe.test_checkpoint_v1 import PROJ, build, media_inputs, tiny_v1_omni
from unimoe.checkpoint import CheckpointError, from_pretrained, from_v1_release, save_pretrained, to_released
from unimoe.config import UniMoEConfig
from unimoe.omni import UniMoEOmni

CLIP_HUB_ID = "openai/clip-vit-large-patch14-336"
SIDE = ("model.mm_projector.", "model.mm_audio_aligner.", "model.query_tokens")
TOWERS = ("model.vision_tower.", "model.audio_tower.")


@dataclass
class Release:
    config: UniMoEConfig
    model: UniMoEOmni  # the reference: what the released loader ends with
    base: Path
    finetune: Path
    clip: Path
    whisper: Path
    q_base: torch.Tensor  # layer 0 q_proj in the base, before the PEFT merge
    q_lora: tuple[torch.Tensor, torch.Tensor]  # its (A, B)
    gate_lora: tuple[torch.Tensor, torch.Tensor]  # a PEFT pair on layer 0's gate (the audio variants train one)


def hf_tower_configs(config: UniMoEConfig):
    from transformers import CLIPVisionConfig, WhisperConfig

    vision = {k: v for k, v in config.vision_config.items() if k not in ("kind", "spatial_pool")}
    audio = {k: v for k, v in config.audio_config.items() if k not in ("query_tokens", "chunk_samples")}
    return CLIPVisionConfig(**vision), WhisperConfig(**audio)


def write_tower_folders(config: UniMoEConfig, root: Path) -> tuple[Path, Path]:
    """A CLIPModel folder (safetensors, as openai/clip-vit-large-patch14-336) and a Whisper one (``model.encoder``
    names in pytorch_model.bin, as openai/whisper-small), random weights."""
    from transformers import CLIPConfig, CLIPModel, WhisperForConditionalGeneration

    vision, audio = hf_tower_configs(config)
    torch.manual_seed(5)
    clip = CLIPModel(CLIPConfig(vision_config=vision.to_dict(), text_config=dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=10)))
    clip.save_pretrained(root / "clip")
    whisper = WhisperForConditionalGeneration(audio)
    whisper.config.save_pretrained(root / "whisper")
    torch.save(whisper.state_dict(), root / "whisper" / "pytorch_model.bin")
    return root / "clip", root / "whisper"


def llava_config(c: UniMoEConfig, whisper: Path) -> dict:
    """The fine-tune's config.json as the released trainer writes it (transformers 4.31 LlavaConfig)."""
    return {
        "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava", "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size, "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads, "rms_norm_eps": c.rms_norm_eps,
        "max_position_embeddings": c.max_position_embeddings, "tie_word_embeddings": False, "torch_dtype": "float32",
        "hidden_act": "silu", "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id, "num_experts": 4, "num_experts_per_tok": 2, "lora_r": c.lora_r,
        "lora_alpha": c.lora_alpha, "mm_vision_tower": CLIP_HUB_ID, "mm_audio_tower": str(whisper),
        "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
        "mm_hidden_size": c.vision_config["hidden_size"], "query_tokens_size": c.audio_config["query_tokens"],
        "mm_query_tokens": True, "audio_projector_type": "linear",
    }


def save_sharded_bin(state: dict[str, torch.Tensor], root: Path) -> None:
    """pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json, as the base release is stored."""
    root.mkdir()
    names = ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")
    shards = ({k: v for k, v in state.items() if k.startswith("model.layers.0.")},
              {k: v for k, v in state.items() if not k.startswith("model.layers.0.")})
    for name, shard in zip(names, shards):
        torch.save(shard, root / name)
    weight_map = {k: name for name, shard in zip(names, shards) for k in shard}
    (root / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def write_4e_release(root: Path) -> Release:
    config = tiny_v1_omni(num_experts=4, layers=2, interval=1)
    clip_dir, whisper_dir = write_tower_folders(config, root)
    model = build(config)  # expert LoRA B is nonzero
    from transformers import CLIPVisionModel, WhisperModel

    with torch.no_grad():  # the reference's towers are what transformers itself loads from the folders
        model.vision_tower.vision_tower.vision_model.load_state_dict(
            CLIPVisionModel.from_pretrained(clip_dir).state_dict())
        model.audio_tower.audio_tower.load_state_dict(WhisperModel.from_pretrained(whisper_dir).encoder.state_dict())
    g = torch.Generator().manual_seed(3)
    scale = config.lora_alpha / config.lora_r
    d, r = config.hidden_size, config.lora_r
    q_base = torch.randn(d, d, generator=g) * 0.05
    q_lora = (torch.randn(r, d, generator=g), torch.randn(d, r, generator=g) * 0.05)
    gate_lora = (torch.randn(r, d, generator=g), torch.randn(config.num_experts, r, generator=g))
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.copy_(q_base + scale * (q_lora[1] @ q_lora[0]))
    released = to_released(model.state_dict(), config, "peft")

    q, gate0 = "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.gate"
    base_state = {k: v for k, v in released.items() if not k.startswith(SIDE) and ".lora_" not in k}
    base_state[f"{q}.weight"] = q_base
    for k in [k for k in base_state if k.endswith("mlp.gate.weight") or k.startswith(TOWERS)]:
        base_state[k] = torch.zeros_like(base_state[k])  # stale: later sources must replace them
    for k in (k for k in released if k.startswith(SIDE)):
        base_state[k] = torch.zeros_like(released[k])
    base_state["model.audio_tower.encoder.conv1.weight"] = torch.zeros(1)  # WhisperAudioTower's own unused copy
    save_sharded_bin(base_state, root / "Uni-MoE-speech-base")

    ft = root / "Uni-MoE-speech-e2"
    ft.mkdir()
    (ft / "config.json").write_text(json.dumps(llava_config(config, whisper_dir)))
    non_lora = {f"base_model.model.{k}": v for k, v in released.items() if k.startswith("model.mm_projector.")}
    non_lora["base_model.model.model.mm_audio_aligner.projector.weight"] = torch.zeros_like(
        released["model.mm_audio_aligner.projector.weight"])  # stale, before mm_audio_aligner.bin
    non_lora["base_model.model.model.layers.1.mlp.gate.weight"] = torch.zeros(4, d)  # stale, before mlp_gates.bin
    torch.save(non_lora, ft / "non_lora_trainables.bin")
    adapter = {f"base_model.model.{k}": v for k, v in released.items() if ".lora_" in k}  # every expert linear
    assert len(adapter) == 2 * 3 * 4 * 2
    for linear, (a, b) in ((q, q_lora), (gate0, gate_lora)):
        adapter[f"base_model.model.{linear}.lora_A.weight"] = a
        adapter[f"base_model.model.{linear}.lora_B.weight"] = b
    torch.save(adapter, ft / "adapter_model.bin")
    (ft / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": config.lora_r, "lora_alpha": config.lora_alpha,
        "lora_dropout": 0.05, "bias": "none", "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", *PROJ]}))
    torch.save({k: v for k, v in released.items() if k.startswith(SIDE[1:])}, ft / "mm_audio_aligner.bin")
    torch.save({k: v for k, v in released.items() if k.endswith("mlp.gate.weight")}, ft / "mlp_gates.bin")
    return Release(config, model, root / "Uni-MoE-speech-base", ft, clip_dir, whisper_dir, q_base, q_lora, gate_lora)


@pytest.fixture
def release(tmp_path) -> Release:
    return write_4e_release(tmp_path)


def logits_and_media(model: UniMoEOmni, config: UniMoEConfig):
    ids = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    pixels, audio = media_inputs(config)
    with torch.no_grad():
        return model(ids).logits, model.media_features(pixels, audio)


# ---- tests


def test_4e_release_assembles_to_the_reference_model(release, tmp_path):
    loaded = from_v1_release(release.base, release.finetune, vision_tower=release.clip)
    c, lc = release.config, loaded.config
    assert isinstance(loaded, UniMoEOmni) and lc.moe_layer_interval == 1 and lc.num_experts == 4
    assert lc.audio_config["query_tokens"] == 5 and lc.vision_config["kind"] == "clip"
    assert loaded.state_dict().keys() == release.model.state_dict().keys()
    theirs, ours = logits_and_media(loaded, c), logits_and_media(release.model, c)
    torch.testing.assert_close(theirs[0], ours[0], rtol=0, atol=0)
    assert theirs[1].keys() == ours[1].keys()
    for token in ours[1]:
        torch.testing.assert_close(theirs[1][token], ours[1][token], rtol=0, atol=0)

    # the merge, computed here: W + (alpha / r) B @ A
    a, b = release.q_lora
    torch.testing.assert_close(loaded.model.layers[0].self_attn.q_proj.weight,
                               release.q_base + (c.lora_alpha / c.lora_r) * (b @ a), rtol=0, atol=0)

    save_pretrained(loaded, tmp_path / "one_folder")  # the derived tower geometry survives a round trip
    again = from_pretrained(tmp_path / "one_folder", model_class=UniMoEOmni)
    torch.testing.assert_close(logits_and_media(again, c)[0], theirs[0], rtol=0, atol=0)


def test_4e_release_equals_the_fully_merged_released_model(release):
    """The released loader ends with plain weights (``merge_and_unload`` folds every PEFT pair, the experts'
    too); ours keeps the expert LoRA apart, which must give the same logits up to rounding."""
    loaded = from_v1_release(release.base, release.finetune, vision_tower=release.clip)
    c = release.config
    merged = build(c)
    merged.load_state_dict(release.model.state_dict())
    scale = c.lora_alpha / c.lora_r
    with torch.no_grad():
        for layer in merged.model.layers:
            ex = layer.mlp.experts
            for proj in PROJ:
                w, a, b = getattr(ex, proj), getattr(ex, f"{proj}_lora_A"), getattr(ex, f"{proj}_lora_B")
                for i in range(c.num_experts):
                    w[i] += scale * (b[i] @ a[i])
                b.zero_()
    torch.testing.assert_close(logits_and_media(loaded, c)[0], logits_and_media(merged, c)[0], rtol=1e-5, atol=1e-5)


def test_4e_later_sources_win_in_the_released_order(release):
    """base < non_lora_trainables.bin < PEFT merge < mm_audio_aligner.bin < mlp_gates.bin < tower folders."""
    loaded = from_v1_release(release.base, release.finetune, vision_tower=release.clip)
    ref = release.model.state_dict()
    got = loaded.state_dict()
    for key in ("vision_aligner.0.weight",  # non_lora_trainables over the base's stale projector
                "audio_aligner.projector.weight",  # mm_audio_aligner.bin over the base and non_lora_trainables
                "audio_aligner.query_tokens",
                "model.layers.1.mlp.gate.weight",  # mlp_gates.bin over the base and non_lora_trainables
                "model.layers.0.mlp.gate.weight",  # mlp_gates.bin over the gate merged with its PEFT pair
                "vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight",  # folder over base
                "audio_tower.audio_tower.conv1.weight"):
        torch.testing.assert_close(got[key], ref[key], rtol=0, atol=0, msg=key)

    # without mlp_gates.bin (optional) the merged gate stands: the base's (stale, zero) gate + (alpha/r) B @ A
    (release.finetune / "mlp_gates.bin").unlink()
    loaded = from_v1_release(release.base, release.finetune, vision_tower=release.clip)
    a, b = release.gate_lora
    scale = release.config.lora_alpha / release.config.lora_r
    torch.testing.assert_close(loaded.model.layers[0].mlp.gate.weight, scale * (b @ a), rtol=0, atol=0)


def test_v1_towers_load_from_hugging_face_folders_like_transformers(release):
    """Tower outputs equal those of the models transformers loads from the same folders (what the released
    ``CLIPVisionTower`` / ``WhisperAudioTower`` do: layer -2 patch tokens; the encoder's last state)."""
    from transformers import CLIPVisionModel, WhisperModel

    loaded = from_v1_release(release.base, release.finetune, vision_tower=release.clip)
    pixels, audio = media_inputs(release.config)
    clip = CLIPVisionModel.from_pretrained(release.clip).eval()
    whisper = WhisperModel.from_pretrained(release.whisper).eval()
    with torch.no_grad():
        expected_vision = clip(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        expected_audio = whisper.encoder(audio).last_hidden_state
        torch.testing.assert_close(loaded.vision_tower(pixels), expected_vision, rtol=0, atol=0)
        torch.testing.assert_close(loaded.audio_tower(audio), expected_audio, rtol=0, atol=0)

    # a CLIPVisionModel folder saved by transformers 5 (flat keys, safetensors) loads the same
    clip.save_pretrained(release.clip.parent / "clip_vision_only")
    again = from_v1_release(release.base, release.finetune, vision_tower=release.clip.parent / "clip_vision_only")
    with torch.no_grad():
        torch.testing.assert_close(again.vision_tower(pixels), expected_vision, rtol=0, atol=0)


def test_a_tower_folder_with_a_missing_or_foreign_key_is_reported(release):
    broken = release.clip.parent / "clip_broken"
    shutil.copytree(release.clip, broken)
    state = load_file(broken / "model.safetensors")
    del state["vision_model.post_layernorm.weight"]
    state["vision_model.extra_head.weight"] = torch.zeros(2)
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"1 missing: vision_tower\.vision_tower\.vision_model\.post_layernorm"
                                              r"\.weight; 1 unexpected: vision_tower\.vision_tower\.vision_model"
                                              r"\.extra_head\.weight"):
        from_v1_release(release.base, release.finetune, vision_tower=broken)

    state = torch.load(release.whisper / "pytorch_model.bin", weights_only=True)
    state["model.encoder_extra.weight"] = torch.zeros(2)
    torch.save(state, release.whisper / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"'model\.encoder_extra\.weight' belongs to no Whisper encoder"):
        from_v1_release(release.base, release.finetune, vision_tower=release.clip)


def test_a_tower_named_by_hub_id_says_what_to_download_and_where_to_point(release):
    with pytest.raises(CheckpointError, match=r"mm_vision_tower='openai/clip-vit-large-patch14-336' is not a local "
                                              r"folder\. Download openai/clip-vit-large-patch14-336 .* pass "
                                              r"vision_tower=<dir>"):
        from_v1_release(release.base, release.finetune)
    with pytest.raises(CheckpointError, match=r"audio_tower='/nowhere/whisper-small': not a folder"):
        from_v1_release(release.base, release.finetune, vision_tower=release.clip, audio_tower="/nowhere/whisper-small")
    config = json.loads((release.finetune / "config.json").read_text())
    config["mm_audio_tower"] = "/path/to/whisper-small"  # the placeholder the released configs carry
    (release.finetune / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"Download openai/whisper-small .* pass audio_tower=<dir>"):
        from_v1_release(release.base, release.finetune, vision_tower=release.clip)
    loaded = from_v1_release(release.base, release.finetune, vision_tower=release.clip, audio_tower=release.whisper)
    assert loaded.audio_tower is not None


@pytest.mark.parametrize("name", ["non_lora_trainables.bin", "adapter_model.bin", "adapter_config.json",
                                  "mm_audio_aligner.bin"])
def test_a_missing_4e_finetune_file_is_named(release, name):
    (release.finetune / name).unlink()
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        from_v1_release(release.base, release.finetune, vision_tower=release.clip)


def test_4e_and_8e_folder_counts_are_checked_against_the_config(release, tmp_path):
    with pytest.raises(CheckpointError, match=r"num_experts=4; that release is given as \(base, finetune\)"):
        from_v1_release(release.base, tmp_path, release.finetune, vision_tower=release.clip)
    with pytest.raises(TypeError, match="from_v1_release"):
        from_v1_release(release.base)
