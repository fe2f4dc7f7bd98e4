"""Loading and saving Uni-MoE checkpoints without unpickling.

Released layout (architecture report §5): a directory with ``config.json`` and safetensors weights, either
one ``model.safetensors`` or shards listed in ``model.safetensors.index.json``. Expert weights are stored one
module per expert::

    model.layers.{L}.mlp.gate.weight
    model.layers.{L}.mlp.fixed_real_moe.{s}.{gate,up,down}_proj.weight
    model.layers.{L}.mlp.dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{e}.{gate,up,down}_proj.weight

Uni-MoE v1 (LLaVA-LLaMA, §3, §5.3; see "Uni-MoE v1 key layout" below) keeps the LLaMA names under ``model.``
and stores each layer's experts one module per expert, in one of two styles: the 4-expert code's
``model.layers.{L}.mlp.experts.{i}.{proj}.weight`` with PEFT LoRA ``...{proj}.lora_A.weight``, or the 8-expert
code's DeepSpeed-MoE ``model.layers.{L}.mlp.deepspeed_moe.experts.deepspeed_experts.{i}.{proj}[_lora_A|_lora_B].weight``
with the gate at ``...mlp.deepspeed_moe.gate.wg.weight``.

DeepSpeed expert-parallel training instead leaves ``mp_rank_00_model_states.pt`` (dense weights under
``"module"``) plus one ``layer_{moe_layer}_expert_{global_id}_mp_rank_00_model_states.pt`` per expert (§5.2).
Both are read with ``torch.load(weights_only=True)``.

Our model stacks each layer's experts into ``[E, ...]`` tensors; for Uni-MoE-2 the per-expert <-> stacked
mapping is the only renaming (every other key already has its released name). v1 also renames the LLaVA
connector keys and merges PEFT LoRA adapters of non-expert linears (see ``from_released``). The Hugging Face
v1 releases come as several folders (LLM base, fine-tune, 8e expert files, the CLIP and Whisper towers apart);
:func:`from_v1_release` assembles them in the released loaders' order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.overrides import TorchFunctionMode

from unimoe.config import PRESETS, UniMoEConfig
from unimoe.model import UniMoEForCausalLM
from unimoe.omni import UniMoEOmni
from unimoe.whisper import HOP

SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_SINGLE = "pytorch_model.bin"
DEEPSPEED_DENSE = "mp_rank_00_model_states.pt"
DEEPSPEED_EXPERT = re.compile(r"layer_(\d+)_expert_(\d+)_mp_rank_00_model_states\.pt")
PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
PEFT_PREFIX = "base_model.model."
DEEPSPEED_LATEST = "latest"  # DeepSpeed's pointer to the newest ``global_stepN`` tag folder


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model; the message names the directory and the keys."""


@dataclass
class LoadReport:
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys the model lacks
    mismatched: list[str] = field(default_factory=list)  # same key, different shape

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 10) -> str:
        parts = []
        for name in ("missing", "unexpected", "mismatched"):
            keys = getattr(self, name)
            if keys:
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {name}: {', '.join(keys[:limit])}{more}")
        return "; ".join(parts) or "all keys match"


# ------------------------------------------------------------------------------------------------------
# Key mapping: stacked experts (ours) <-> one module per expert (released)


V1Style = Literal["deepspeed", "peft"]


def default_v1_style(config: UniMoEConfig) -> V1Style:
    """Which released v1 naming to write: only the 8-expert release ran DeepSpeed-MoE (``Uni_MoE_8e``);
    the 4-expert releases are Mixtral-style ``experts.{i}`` with PEFT LoRA. Both are always read."""
    return "deepspeed" if config.num_experts == 8 else "peft"


def _expert_tables(config: UniMoEConfig, v1_style: V1Style | None = None) -> list[tuple[str, str, int]]:
    """(our stacked name, released per-expert name with ``{i}``, expert count) for one layer's MLP.

    For v1, ``v1_style=None`` lists both styles (for reading); a style lists that one (for writing).
    """
    tables = []
    if config.moe_type == "topk_lora":
        styles = (v1_style,) if v1_style else ("peft", "deepspeed")
        for proj in PROJECTIONS:
            for ours, peft, deepspeed in (("", ".weight", ".weight"), ("_lora_A", ".lora_A.weight", "_lora_A.weight"),
                                          ("_lora_B", ".lora_B.weight", "_lora_B.weight")):
                if "peft" in styles:  # 4e: model.layers.L.mlp.experts.i.proj (+ PEFT LoRA names)
                    tables.append((f"experts.{proj}{ours}", f"experts.{{i}}.{proj}{peft}", config.num_experts))
                if "deepspeed" in styles:  # 8e: DeepSpeed-MoE expert list of LlamaMLPLoRA (loralib names)
                    tables.append((f"experts.{proj}{ours}", f"{V1_DS_EXPERTS}.{{i}}.{proj}{deepspeed}",
                                   config.num_experts))
        return tables
    routed = "dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{i}.{proj}.weight"
    shared = "fixed_real_moe.{i}.{proj}.weight"
    for proj in PROJECTIONS:
        tables.append((f"routed_experts.{proj}", routed.replace("{proj}", proj), config.mlp_dynamic_expert_num))
        if config.mlp_fixed_expert_num:
            tables.append((f"shared_experts.{proj}", shared.replace("{proj}", proj), config.mlp_fixed_expert_num))
    return tables


def to_released(state: dict[str, torch.Tensor], config: UniMoEConfig,
                v1_style: V1Style | None = None) -> dict[str, torch.Tensor]:
    """Split our stacked expert tensors into the released one-module-per-expert keys (and, for v1, give
    the gate and the connectors their LLaVA names; ``v1_style`` defaults to :func:`default_v1_style`)."""
    out = {}
    is_v1 = config.moe_type == "topk_lora"
    style = (v1_style or default_v1_style(config)) if is_v1 else None
    tables = _expert_tables(config, style)
    for key, value in state.items():
        prefix, suffix = _split_mlp_key(key, decoder_only=is_v1)
        if is_v1 and prefix and suffix == "gate.weight" and style == "deepspeed":
            out[prefix + V1_DS_GATE] = value
            continue
        match = next((t for t in tables if t[0] == suffix), None) if prefix else None
        if match is None:
            out[_v1_top_level(key, to_released=True) if is_v1 else key] = value
            continue
        _, pattern, count = match
        if value.shape[0] != count:
            raise CheckpointError(f"{key}: expected {count} stacked experts, got shape {tuple(value.shape)}")
        for i in range(count):
            out[prefix + pattern.format(i=i)] = value[i].contiguous()
    return out


def from_released(state: dict[str, torch.Tensor], config: UniMoEConfig) -> dict[str, torch.Tensor]:
    """Stack released per-expert tensors into our ``[E, ...]`` layout; other keys pass through.

    For v1 (``moe_type="topk_lora"``) the keys are first normalised (:func:`_normalise_v1`): PEFT prefixes and
    adapter names dropped, the DeepSpeed gate and the LLaVA connectors renamed, keys the released forward never
    uses dropped; after stacking, PEFT/loralib LoRA pairs on non-expert linears (attention, dense MLPs, the 4e
    gate) are merged into their base weight, as the released inference does (``merge_and_unload``).
    Keys left over keep their normalised (our) names, so a strict report names e.g. ``vision_aligner.4.weight``
    for a released ``model.mm_projector.4.weight``.
    """
    is_v1 = config.moe_type == "topk_lora"
    if is_v1:
        state = _normalise_v1(state)
    out: dict[str, torch.Tensor] = {}
    pending: dict[str, dict[int, torch.Tensor]] = {}
    counts: dict[str, int] = {}
    matchers = [
        (ours, re.compile(re.escape(pattern).replace(r"\{i\}", r"(\d+)") + "$"), count)
        for ours, pattern, count in _expert_tables(config)
    ]
    for key, value in state.items():
        key = key.removeprefix(PEFT_PREFIX)
        prefix, suffix = _split_mlp_key(key, decoder_only=is_v1)
        hit = None
        if prefix:
            for ours, regex, count in matchers:
                m = regex.match(suffix)
                if m:
                    hit = (prefix + ours, int(m.group(1)), count)
                    break
        if hit is None:
            out[key] = value
            continue
        stacked, index, count = hit
        if index in pending.get(stacked, {}):
            raise CheckpointError(f"{stacked}: expert {index} stored twice (both v1 naming styles present?)")
        pending.setdefault(stacked, {})[index] = value
        counts[stacked] = count
    for stacked, experts in pending.items():
        count = counts[stacked]
        if sorted(experts) != list(range(count)):
            missing = sorted(set(range(count)) - set(experts))
            raise CheckpointError(f"{stacked}: experts {missing} missing (found {sorted(experts)}, need 0..{count - 1})")
        out[stacked] = torch.stack([experts[i] for i in range(count)])
    if is_v1:
        out = _merge_lora(out, config.lora_alpha / config.lora_r)
    return out


# ------------------------------------------------------------------------------------------------------
# Uni-MoE v1 key layout (released code: Uni_MoE/Uni_MoE_8e/.../model/{llava_arch.py, moe/modeling_llama_dp.py,
# moe/llama_mlp.py, audio_aligner/builder.py}; 4e: Uni_MoE/Uni_MoE_speech/model/moe/moe.py)
#
#   model.{embed_tokens, layers.L.self_attn.{q,k,v,o}_proj, layers.L.{input,post_attention}_layernorm, norm}, lm_head
#   model.layers.L.mlp.{gate_proj, up_proj, down_proj}.weight                  dense layers ("sparse" interval)
#   model.layers.L.mlp.gate.weight, ...mlp.experts.{i}.{proj}.weight         4e (+ PEFT ...{proj}.lora_A.weight)
#   model.layers.L.mlp.deepspeed_moe.gate.wg.weight                            8e gate
#   model.layers.L.mlp.deepspeed_moe.experts.deepspeed_experts.{i}.{proj}[_lora_A|_lora_B].weight   8e experts
#   model.mm_projector.{0,2}.{weight,bias}                                     CLIP-L/336 mlp2x_gelu projector
#   model.vision_tower.vision_tower.vision_model.*                             CLIP vision tower (when saved)
#   model.audio_tower.audio_tower.*                                            Whisper encoder (when saved)
#   model.mm_audio_aligner.decoder.audio_decoder.*, model.mm_audio_aligner.projector.*, model.query_tokens [1, Q, d_a]
#
# A PEFT-wrapped model (the LoRA fine-tune, and so the DeepSpeed files of that run) prefixes everything with
# ``base_model.model.`` and names adapters ``{linear}.lora_A.default.weight``. v1 has no ``language_model.``
# prefix (that is UniMoE-Audio, §5.1).

V1_DS_EXPERTS = "deepspeed_moe.experts.deepspeed_experts"
V1_DS_GATE = "deepspeed_moe.gate.wg.weight"
V1_TOP_LEVEL: tuple[tuple[str, str], ...] = (  # (released prefix, ours); the first match wins
    ("model.mm_projector.", "vision_aligner."),
    ("model.vision_tower.", "vision_tower."),
    ("model.audio_tower.audio_tower.", "audio_tower.audio_tower."),
    ("model.mm_audio_aligner.", "audio_aligner."),
)
V1_QUERY_TOKENS = ("model.query_tokens", "audio_aligner.query_tokens")
# Stored but never used by the released forward: ``WhisperAudioTower`` subclasses ``WhisperModel`` and so
# registers a second, untrained encoder/decoder next to the one it loads into ``.audio_tower``; LLaMA
# checkpoints from transformers < 4.31 store the computed ``rotary_emb.inv_freq``. These are dropped, not
# reported (a deliberate exception to the strict report, listed here).
V1_UNUSED = (re.compile(r"model\.audio_tower\.(encoder|decoder)\."), re.compile(r".*\.rotary_emb\.inv_freq$"))
# The v1 *audio* variant (Uni_MoE_audio: BEATs encoder + BLIP-2 Q-Former with its own query tokens).
V1_BEATS = ("model.mm_audio_aligner.qformer.", "model.mm_audio_aligner.query_tokens")


class BEATsNotImplemented(NotImplementedError):
    """The released Uni-MoE v1 audio variant (``Uni-MoE-audio-base/-e2``: BEATs iter3+ encoder and a BLIP-2
    Q-Former) is not implemented; only the speech variant (Whisper encoder + Whisper-decoder Q-Former) is."""


def _v1_top_level(key: str, to_released: bool = False) -> str:
    """Rename one non-MLP key between the LLaVA names and ours (either direction)."""
    released, ours = V1_QUERY_TOKENS
    if key == (ours if to_released else released):
        return released if to_released else ours
    for released, ours in V1_TOP_LEVEL:
        src, dst = (ours, released) if to_released else (released, ours)
        if key.startswith(src):
            return dst + key[len(src):]
    return key


def _normalise_v1(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Released v1 keys -> our names (experts still per-expert). Raises for the BEATs audio variant."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix(PEFT_PREFIX)
        key = re.sub(r"\.(lora_[AB])\.(?!weight$)[^.]+\.weight$", r".\1.weight", key)  # PEFT adapter name
        key = key.replace(".base_layer.", ".")  # PEFT >= 0.7 wraps the base linear
        if key.startswith(V1_BEATS):
            raise BEATsNotImplemented(
                f"{key}: this is the Uni-MoE v1 audio variant (BEATs encoder + BLIP-2 Q-Former); it is not "
                "implemented, only the speech variant (Whisper encoder + Whisper-decoder Q-Former) is")
        if any(p.match(key) for p in V1_UNUSED):
            continue
        prefix, suffix = _split_mlp_key(key, decoder_only=True)
        if prefix and suffix.startswith("deepspeed_moe.gate.wg."):
            key = prefix + "gate." + suffix.removeprefix("deepspeed_moe.gate.wg.")
        elif not prefix:
            key = _v1_top_level(key)
        if key in out:
            raise CheckpointError(f"{key}: stored twice under different released names")
        out[key] = value
    return out


def _merge_lora(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """Fold leftover LoRA pairs into their base weight: ``W += scale · B @ A``.

    PEFT names (``x.lora_A.weight``) cover attention, the dense MLPs and the 4e gate; loralib names
    (``x_lora_A.weight``) cover the 8e dense ``LlamaMLPLoRA`` layers. Pairs whose base weight is absent stay,
    so the strict report names them. ``scale`` is ``lora_alpha / lora_r`` of the config (the released runs
    used the same r and alpha for PEFT and the expert LoRA).
    """
    out = dict(state)
    for sep in (".lora_A", "_lora_A"):  # PEFT first: in 8e it may wrap a loralib adapter linear itself
        for key in list(out):
            if not key.endswith(f"{sep}.weight") or key not in out:
                continue
            base = key[: -len(f"{sep}.weight")]
            b_key, w_key = f"{base}{sep[:-1]}B.weight", f"{base}.weight"
            if b_key not in out or w_key not in out:
                continue
            a, b, w = out.pop(key), out.pop(b_key), out[w_key]
            out[w_key] = (w.float() + scale * (b.float() @ a.float())).to(w.dtype)
    return out


def released_v1_config(data: dict[str, Any]) -> tuple[UniMoEConfig, bool] | None:
    """A released v1 ``config.json`` (LLaVA-LLaMA, transformers 4.31) as our config, or None if ``data`` is not
    one. The second value says whether the MoE layer placement was stated (8e ``moe_type`` "dense"/"sparse");
    the 4e code fixes it in code (every layer for speech, even layers for audio/dp), so it is then read from
    the keys.

    Why a translation: the released file leaves out fields whose LLaMA defaults differ from our Qwen2 ones
    (``rope_theta`` 1e4, no attention bias, no M-RoPE), and its ``moe_type`` means placement, not block type.
    Our routing stays deterministic (``top2_2nd_expert_sampling=False``) although the 8e gate samples its
    second expert by default; set it in the config to get the released behaviour.
    """
    archs = data.get("architectures") or []
    looks_llava = data.get("model_type") in ("llava", "llama") or any("Llama" in a for a in archs)
    if not looks_llava or data.get("moe_type") in ("dynamic", "topk_lora"):
        return None
    if "BEATs" in str(data.get("mm_audio_tower", "")):
        raise BEATsNotImplemented(f"mm_audio_tower={data['mm_audio_tower']!r}: the Uni-MoE v1 audio variant "
                                  "(BEATs + BLIP-2 Q-Former) is not implemented")
    num_experts = int(data.get("num_experts", 4))
    fields = dict(PRESETS["unimoe_8e" if num_experts == 8 else "unimoe_4e"])
    known = {f for f in UniMoEConfig.__dataclass_fields__} - {"extra", "moe_type", "vision_config", "audio_config"}
    fields.update({k: v for k, v in data.items() if k in known and v is not None})
    if "num_key_value_heads" not in data:  # transformers < 4.31 files: MHA
        fields["num_key_value_heads"] = fields["num_attention_heads"]
    placement = data.get("moe_type")
    stated = placement in ("dense", "sparse")
    if placement == "sparse":
        fields["moe_layer_interval"] = int(data.get("moe_stride", 2))
    elif placement == "dense":
        fields["moe_layer_interval"] = 1
    extra = {k: v for k, v in data.items() if k not in known}
    if "moe_type" in extra:
        extra["released_moe_type"] = extra.pop("moe_type")
    return UniMoEConfig(**fields, extra=extra), stated


def infer_moe_interval(keys: list[str] | set[str], num_layers: int) -> int:
    """The v1 MoE placement read from the keys: 1 if every layer has a gate, k if exactly every k-th does."""
    gate = re.compile(r"(?:^|\.)model\.layers\.(\d+)\.mlp\.(gate\.|deepspeed_moe\.gate\.)")
    moe = {int(m.group(1)) for k in keys if (m := gate.search(k))}
    for k in range(1, num_layers + 1):
        if moe == {i for i in range(num_layers) if i % k == 0}:
            return k
    raise CheckpointError(f"MoE layers {sorted(moe)} of {num_layers} are not every k-th layer")


def _split_mlp_key(key: str, decoder_only: bool = False) -> tuple[str | None, str]:
    """``model.layers.3.mlp.x.y`` -> (``model.layers.3.mlp.``, ``x.y``); (None, key) outside an MLP.

    ``decoder_only`` (v1) matches the decoder's ``model.layers`` only, not the towers' own ``layers.N.mlp``
    (CLIP encoder layers have an ``mlp`` too, and v1 renames tower keys).
    """
    pattern = r"(model\.layers\.\d+\.mlp\.)(.*)$" if decoder_only else r"(.*\.layers\.\d+\.mlp\.)(.*)$"
    m = re.match(pattern, key)
    return (m.group(1), m.group(2)) if m else (None, key)


# ------------------------------------------------------------------------------------------------------
# Reading


def read_state_dict(directory: str | Path, skip_prefixes: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint directory, keys as stored (safetensors, ``.bin`` or DeepSpeed files).

    Keys starting with one of ``skip_prefixes`` are not read (safetensors) or dropped right away.
    """
    root = Path(directory)
    wanted = lambda key: not key.startswith(skip_prefixes)
    if (root / SAFETENSORS_INDEX).is_file():
        return _read_sharded(root, SAFETENSORS_INDEX, lambda path: _read_safetensors(path, wanted), wanted)
    if (root / SAFETENSORS_SINGLE).is_file():
        return _read_safetensors(root / SAFETENSORS_SINGLE, wanted)
    if (root / BIN_INDEX).is_file():
        return _read_sharded(root, BIN_INDEX, _load_tensors, wanted)
    if (root / BIN_SINGLE).is_file():
        return {k: v for k, v in _load_tensors(root / BIN_SINGLE).items() if wanted(k)}
    if (root / DEEPSPEED_DENSE).is_file():
        return {k: v for k, v in _read_deepspeed(root).items() if wanted(k)}
    if (root / DEEPSPEED_LATEST).is_file():  # a DeepSpeed output folder: weights in its newest global_stepN
        tag = (root / DEEPSPEED_LATEST).read_text().strip()
        step = (root / tag).resolve()
        if step.parent != root.resolve() or not (step / DEEPSPEED_DENSE).is_file():
            raise CheckpointError(f"{root / DEEPSPEED_LATEST}: names {tag!r}, not a folder here holding {DEEPSPEED_DENSE}")
        return {k: v for k, v in _read_deepspeed(step).items() if wanted(k)}
    raise CheckpointError(
        f"{root}: no weights found (looked for {SAFETENSORS_INDEX}, {SAFETENSORS_SINGLE}, {BIN_INDEX}, "
        f"{BIN_SINGLE}, {DEEPSPEED_DENSE}, {DEEPSPEED_LATEST})"
    )


def _read_safetensors(path: Path, wanted: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    with safe_open(path, framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys() if wanted(key)}  # noqa: SIM118 (safe_open is not a mapping)


def _read_sharded(root: Path, index_name: str, load, wanted: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    index_path = root / index_name
    try:
        weight_map: dict[str, str] = json.loads(index_path.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index_path}: not a valid index ({e})") from e
    weight_map = {k: v for k, v in weight_map.items() if wanted(k)}
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = (root / shard).resolve()
        if shard_path.parent != root.resolve():
            raise CheckpointError(f"{index_path}: shard {shard!r} lies outside the checkpoint directory")
        if not shard_path.is_file():
            raise CheckpointError(f"{index_path}: shard {shard} is missing")
        state.update((k, v) for k, v in load(shard_path).items() if wanted(k))
    absent = sorted(set(weight_map) - set(state))
    if absent:
        raise CheckpointError(f"{index_path}: {len(absent)} indexed keys absent from their shards, e.g. {absent[:3]}")
    return state


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses arbitrary pickled objects; say so plainly
        raise CheckpointError(f"{path}: cannot be read as plain tensors with weights_only=True ({e})") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def _read_deepspeed(root: Path) -> dict[str, torch.Tensor]:
    """Dense weights from ``mp_rank_00_model_states.pt`` plus every per-expert file (global expert ids)."""
    dense = _load_tensors(root / DEEPSPEED_DENSE)
    state = dict(dense.get("module", dense))
    for path in sorted(root.iterdir()):
        if DEEPSPEED_EXPERT.fullmatch(path.name):
            state.update(_load_tensors(path))
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


# ------------------------------------------------------------------------------------------------------
# Public entry points


def load_state_dict_into(
    model: UniMoEForCausalLM, state: dict[str, torch.Tensor], strict: bool = True, source: str = "checkpoint"
) -> LoadReport:
    """Copy ``state`` (our key layout) into ``model``; raise on any mismatch unless ``strict=False``.

    Tensors are assigned, not copied, so a model built on the meta device gets real storage.
    """
    own = model.state_dict()
    report = LoadReport(
        missing=sorted(set(own) - set(state)),
        unexpected=sorted(set(state) - set(own)),
        mismatched=sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape),
    )
    if strict and not report.ok:
        raise CheckpointError(f"{source}: {report.describe()}")
    usable = {k: v for k, v in state.items() if k in own and k not in report.mismatched}
    model.load_state_dict(usable, strict=False, assign=True)
    if model.config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return report


def load_config(directory: str | Path) -> tuple[UniMoEConfig, bool]:
    """``config.json`` of a checkpoint (ours, a released Uni-MoE-2 one, or a released v1 LLaVA one), and whether
    the v1 MoE placement is known (False: read it from the keys with :func:`infer_moe_interval`)."""
    config_path = Path(directory) / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: config.json not found")
    data = json.loads(config_path.read_text())
    v1 = released_v1_config(data)
    return v1 if v1 is not None else (UniMoEConfig.from_dict(data), True)


def from_pretrained(
    directory: str | Path,
    strict: bool = True,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    ignore_prefixes: tuple[str, ...] = (),
    model_class: type[UniMoEForCausalLM] = UniMoEForCausalLM,
) -> UniMoEForCausalLM:
    """Build the decoder (or ``model_class``, e.g. the omni model with its towers) from ``config.json`` and
    load released-layout (or stacked-layout) weights.

    The model is built on the meta device (no random init of billions of weights), then takes the loaded
    tensors; anything still on meta afterwards (missing with ``strict=False``) is an error.
    ``ignore_prefixes`` names modules that belong to someone else (``vision_tower.``, ``audio_aligner.``...
    in a full Omni checkpoint; released names, e.g. ``model.mm_projector.`` for v1); they are skipped instead of
    reported as unexpected. A released v1 ``config.json`` is translated (:func:`released_v1_config`).
    """
    root = Path(directory)
    config, placement_known = load_config(root)
    raw = read_state_dict(root, skip_prefixes=ignore_prefixes)
    return _build_and_load(config, placement_known, raw, str(root), strict, dtype, device, model_class)


class _SkipRandomInit(TorchFunctionMode):
    """While a model is built on the meta device, random initialisers do nothing: meta tensors hold no values
    to draw, and ``normal_`` on one imports torch._dynamo (about a second of every run's start-up)."""

    INITIALISERS = frozenset({"normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                              "xavier_uniform_", "xavier_normal_", "orthogonal_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in self.INITIALISERS:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


def _build_and_load(config: UniMoEConfig, placement_known: bool, raw: dict[str, torch.Tensor], source: str,
                    strict: bool, dtype: torch.dtype | None, device: str | torch.device,
                    model_class: type[UniMoEForCausalLM]) -> UniMoEForCausalLM:
    if not placement_known:
        config.moe_layer_interval = infer_moe_interval(raw.keys(), config.num_hidden_layers)
    with torch.device("meta"), _SkipRandomInit():
        model = model_class(config)
    state = from_released(raw, config)
    del raw
    if config.tie_word_embeddings and "model.embed_tokens.weight" in state:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]  # tied checkpoints store it once
    state = {k: v.to(device=device, dtype=dtype if dtype and v.is_floating_point() else v.dtype) for k, v in state.items()}
    load_state_dict_into(model, state, strict=strict, source=source)
    still_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:
        raise CheckpointError(f"{source}: no weights for {len(still_meta)} tensors, e.g. {still_meta[:5]}")
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------------------
# The Hugging Face v1 releases (released loaders: Uni_MoE_speech/model/all_builder.py
# ``load_all_pretrained_model`` for 4e; Uni_MoE_8e/.../model/all_builder.py ``load_all_pretrained_model_dp`` for 8e)
#
#   4e: Uni-MoE-speech-base (LLaMA + the 4 stage-2 experts) + Uni-MoE-speech-e2 (the LoRA fine-tune)
#   8e: Uni-MoE-speech-base (its 4e MoE unused) + Uni-MoE-8e-Experts (mlp_*.bin) + Uni-MoE-8e-e2
#   both: CLIP ViT-L/14-336 and Whisper-small in their own Hugging Face folders, named by the fine-tune's
#   config.json (``mm_vision_tower``, ``mm_audio_tower``) or passed to the released loader as paths.

# ``ori_expert_list``: the stage-2 dense FFN file each global expert starts from (two files serve twice)
V1_8E_EXPERT_FILES = ("mlp_audiocap", "mlp_basev", "mlp_base", "mlp_base1", "mlp_base4", "mlp_base7", "mlp_base",
                      "mlp_base7")
V1_EXPERT_PARAMS = {f"{p}{part}" for p in PROJECTIONS for part in ("", "_lora_A", "_lora_B")}
PEFT_ADAPTER = "adapter_model"  # adapter_model.safetensors or adapter_model.bin, with adapter_config.json
# The fine-tune's files in the order each released loader applies them (a later one wins), and whether the
# released loader needs it. The PEFT adapter is merged where it stands in the order, as ``merge_and_unload``.
V1_4E_FINETUNE_ORDER = (("non_lora_trainables.bin", True), (PEFT_ADAPTER, True), ("mm_audio_aligner.bin", True),
                        ("mlp_gates.bin", False))
V1_8E_FINETUNE_ORDER = (("non_lora_trainables.bin", False), ("mlp_gates.bin", False), (PEFT_ADAPTER, True),
                        ("mm_audio_aligner.bin", True))
PEFT_LORA_KEY = re.compile(r"(?P<linear>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight")  # optional adapter name
# 4e expert linears: their PEFT LoRA fills our stacked expert LoRA instead of being merged (same sum)
V1_4E_EXPERT_LINEAR = re.compile(r"model\.layers\.\d+\.mlp\.experts\.\d+\.(?:gate|up|down)_proj")
# (config field, argument, what to download) for each tower folder
V1_TOWERS = {"vision": ("mm_vision_tower", "vision_tower", "openai/clip-vit-large-patch14-336"),
             "audio": ("mm_audio_tower", "audio_tower", "openai/whisper-small")}
# Parts of a full CLIPModel folder that CLIPVisionModel.from_pretrained (the released tower) leaves out
CLIP_NON_VISION = ("text_model.", "text_projection.", "visual_projection.", "logit_scale")
HF_BOOKKEEPING = {"transformers_version", "architectures", "dtype", "torch_dtype", "model_type", "_name_or_path"}


def _strip_trainer_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released trainer's renaming of its side files: drop ``base_model.``, then ``model.`` if keys start
    ``model.model.``."""
    state = {k.removeprefix("base_model."): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    return state


def _merge_peft_adapter(state: dict[str, torch.Tensor], finetune: Path) -> None:
    """Fold the fine-tune's PEFT adapter into ``state`` now (``W += alpha/r · B @ A``, r and alpha from
    ``adapter_config.json``), so that files applied later replace merged weights as in the released loaders.

    Pairs whose linear is absent stay as ``{linear}.lora_A/B.weight`` for :func:`from_released` (merged or
    reported there). 4e expert pairs stay too: our experts keep their LoRA apart (the same sum).
    """
    path = next((finetune / f"{PEFT_ADAPTER}.{ext}" for ext in ("safetensors", "bin")
                 if (finetune / f"{PEFT_ADAPTER}.{ext}").is_file()), None)
    if path is None:
        raise CheckpointError(f"{finetune}: the PEFT adapter is missing (need {PEFT_ADAPTER}.safetensors or "
                              f"{PEFT_ADAPTER}.bin, with adapter_config.json)")
    config_path = finetune / "adapter_config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing (the PEFT adapter's r and lora_alpha)")
    peft = json.loads(config_path.read_text())
    if not peft.get("r") or "lora_alpha" not in peft:
        raise CheckpointError(f"{config_path}: no r / lora_alpha")
    scale = peft["lora_alpha"] / peft["r"]
    adapter = _read_safetensors(path, lambda k: True) if path.suffix == ".safetensors" else _load_tensors(path)
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in adapter.items():
        m = PEFT_LORA_KEY.fullmatch(key.removeprefix(PEFT_PREFIX))
        if m is None:
            raise CheckpointError(f"{path}: {key!r} is not a PEFT LoRA weight")
        pairs.setdefault(m["linear"], {})[m["ab"]] = value
    for linear, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise CheckpointError(f"{path}: {linear} has lora_{''.join(ab)} only")
        w_key = f"{linear}.weight"
        if w_key in state and not V1_4E_EXPERT_LINEAR.fullmatch(linear):
            w = state[w_key]
            state[w_key] = (w.float() + scale * (ab["B"].float() @ ab["A"].float())).to(w.dtype)
        else:
            state[f"{linear}.lora_A.weight"], state[f"{linear}.lora_B.weight"] = ab["A"], ab["B"]


def _apply_finetune(state: dict[str, torch.Tensor], finetune: Path,
                    order: tuple[tuple[str, bool], ...]) -> None:
    """The fine-tune folder's files over ``state``, in the released loader's ``order`` (shared by 4e and 8e)."""
    for name, required in order:
        if name == PEFT_ADAPTER:
            _merge_peft_adapter(state, finetune)
        elif (finetune / name).is_file():
            state.update(_strip_trainer_prefixes(_load_tensors(finetune / name)))
        elif required:
            raise CheckpointError(f"{finetune / name}: missing (the released loader reads it from the fine-tune)")


def read_v1_4e_release(base: str | Path, finetune: str | Path) -> dict[str, torch.Tensor]:
    """One released-layout state dict from ``Uni-MoE-speech-base`` (``base``: LLaMA with the 4 experts, gates
    ``mlp.gate``, experts ``mlp.experts.{i}``) and the LoRA fine-tune (``finetune``), in the released loader's
    order (a later source wins): base; ``non_lora_trainables.bin``; the PEFT adapter, merged; then
    ``mm_audio_aligner.bin`` and ``mlp_gates.bin`` over the merged weights. Every file is read with
    ``weights_only=True``.
    """
    state = read_state_dict(base)
    _apply_finetune(state, Path(finetune), V1_4E_FINETUNE_ORDER)
    return state


def read_v1_8e_release(base: str | Path, experts: str | Path, finetune: str | Path) -> dict[str, torch.Tensor]:
    """One released-layout state dict from ``Uni-MoE-speech-base`` (``base``), ``Uni-MoE-8e-Experts``
    (``experts``: ``mlp_*.bin``) and the ``Uni-MoE-8e-e2`` LoRA fine-tune (``finetune``), in the released
    loader's order (a later source wins): base; per global expert g, ``{g}_mlp_experts.bin`` (its LoRA)
    updated with its stage-2 FFN file, keys renamed as released (layer = 3rd dot field, parameter = the
    second last); ``non_lora_trainables.bin``; ``mlp_gates.bin``; the PEFT adapter, merged;
    ``mm_audio_aligner.bin``. The base is the 4-expert model, so its ``mlp.experts.*`` / ``mlp.gate.*`` keys are
    not used (the released loader drops them as mismatched). Every file is read with ``weights_only=True``.
    """
    base, experts, finetune = Path(base), Path(experts), Path(finetune)
    four_e = re.compile(r"(?:.*\.)?model\.layers\.\d+\.mlp\.(experts\.|gate\.)")
    state = {k: v for k, v in read_state_dict(base).items() if not four_e.match(k)}
    for g, name in enumerate(V1_8E_EXPERT_FILES):
        files = (finetune / f"{g}_mlp_experts.bin", experts / f"{name}.bin")
        for path in files:
            if not path.is_file():
                raise CheckpointError(f"{path}: missing (expert {g} of the 8e release)")
        merged = _load_tensors(files[0])
        merged.update(_load_tensors(files[1]))
        for key, value in merged.items():
            parts = key.split(".")
            if len(parts) < 4 or not parts[2].isdigit() or parts[-2] not in V1_EXPERT_PARAMS:
                raise CheckpointError(f"{files}: key {key!r} names no expert parameter of a layer")
            state[f"model.layers.{parts[2]}.mlp.{V1_DS_EXPERTS}.{g}.{parts[-2]}.weight"] = value
    if (finetune / "fm_adapter.bin").is_file() and json.loads((finetune / "config.json").read_text()).get("use_fm_block"):
        raise NotImplementedError(f"{finetune}: modality 'fm' gate adapters (use_fm_block) are not implemented")
    _apply_finetune(state, finetune, V1_8E_FINETUNE_ORDER)
    return state


def _tower_folder(kind: str, given: str | Path | None, config: UniMoEConfig, finetune: Path) -> Path | None:
    """The local folder of one v1 tower: the argument, else the config's ``mm_*_tower`` if it is a local
    folder (the released loader also takes either); None when neither names one."""
    field_name, arg, hub_id = V1_TOWERS[kind]
    if given is not None:
        if not Path(given).is_dir():
            raise CheckpointError(f"{arg}={str(given)!r}: not a folder (want the Hugging Face folder of {hub_id})")
        return Path(given)
    named = config.extra.get(field_name)
    if not named:
        return None
    if Path(named).is_dir():
        return Path(named)
    looks_hub = re.fullmatch(r"[\w.-]+/[\w.-]+", str(named)) is not None
    raise CheckpointError(
        f"{finetune / 'config.json'}: {field_name}={named!r} is not a local folder. Download "
        f"{named if looks_hub else hub_id} from the Hugging Face Hub (e.g. `huggingface-cli download "
        f"{named if looks_hub else hub_id} --local-dir <dir>`) and pass {arg}=<dir>")


def _clip_vision_config(folder: Path, config: UniMoEConfig) -> dict[str, Any]:
    """Our ``vision_config`` for a v1 CLIP tower folder (a CLIPModel or CLIPVisionModel config.json): LLaVA's
    layer -2 patch features, no pooling (one token per patch)."""
    from transformers import CLIPVisionConfig

    layer, feature = config.extra.get("mm_vision_select_layer", -2), config.extra.get("mm_vision_select_feature", "patch")
    if (layer, feature) != (-2, "patch"):
        raise NotImplementedError(f"mm_vision_select_layer={layer}, mm_vision_select_feature={feature!r}: only "
                                  "layer -2 patch features (every released v1 config) are implemented")
    hf = CLIPVisionConfig.from_pretrained(folder)
    fields = {k: v for k, v in hf.to_diff_dict().items() if k not in HF_BOOKKEEPING}
    return {"kind": "clip", **fields, "image_size": hf.image_size, "patch_size": hf.patch_size,
            "spatial_pool": hf.image_size // hf.patch_size}


def _whisper_audio_config(folder: Path, config: UniMoEConfig) -> dict[str, Any]:
    """Our ``audio_config`` for a v1 Whisper folder: its geometry, ``query_tokens_size`` queries per chunk, and
    chunks as long as the encoder's window (30 s for Whisper-small)."""
    from transformers import WhisperConfig

    hf = WhisperConfig.from_pretrained(folder)
    fields = {k: v for k, v in hf.to_diff_dict().items() if k not in HF_BOOKKEEPING}
    return {**fields, "num_mel_bins": hf.num_mel_bins, "query_tokens": int(config.extra.get("query_tokens_size", 50)),
            "chunk_samples": 2 * hf.max_source_positions * HOP}


def read_clip_vision_folder(folder: str | Path) -> dict[str, torch.Tensor]:
    """The CLIP vision weights of a Hugging Face folder (CLIPModel, or CLIPVisionModel of any transformers) under
    the released v1 names ``model.vision_tower.vision_tower.vision_model.*``; the text half of a full CLIPModel
    is left out, as ``CLIPVisionModel.from_pretrained`` does."""
    out = {}
    for key, value in read_state_dict(folder).items():
        if key.startswith(CLIP_NON_VISION) or key.endswith("position_ids"):  # position ids: computed buffers
            continue
        out[f"model.vision_tower.vision_tower.vision_model.{key.removeprefix('vision_model.')}"] = value
    return out


def read_whisper_encoder_folder(folder: str | Path) -> dict[str, torch.Tensor]:
    """The Whisper encoder of a Hugging Face folder (WhisperForConditionalGeneration ``model.encoder.*`` or
    WhisperModel ``encoder.*``) under the released v1 name ``model.audio_tower.audio_tower.*``.

    The decoder is left out: the released code seeds the Q-Former with it (``WhisperAudioDecoder.load_model``:
    ``WhisperModel.from_pretrained(mm_audio_tower).decoder``), but ``mm_audio_aligner.bin`` holds every
    ``mm_audio_aligner`` parameter (the trainer saves them all) and replaces that seed, so it never shows.
    """
    out = {}
    for key, value in read_state_dict(folder).items():
        inner = key.removeprefix("model.")
        if inner.startswith("encoder."):
            out[f"model.audio_tower.audio_tower.{inner.removeprefix('encoder.')}"] = value
        elif not (inner.startswith("decoder.") or key == "proj_out.weight"):
            raise CheckpointError(f"{folder}: {key!r} belongs to no Whisper encoder or decoder")
    if not out:
        raise CheckpointError(f"{folder}: no Whisper encoder weights (encoder.* or model.encoder.*)")
    return out


def _v1_towers(config: UniMoEConfig, finetune: Path, vision_tower: str | Path | None,
               audio_tower: str | Path | None) -> tuple[UniMoEConfig, dict[str, dict[str, torch.Tensor]], list[Path]]:
    """Tower weights from their folders, by our key prefix, and the config with the tower geometry filled in
    from those folders where it was empty (a released LLaVA config.json names the towers, not their sizes)."""
    towers: dict[str, dict[str, torch.Tensor]] = {}
    folders = []
    vision = _tower_folder("vision", vision_tower, config, finetune)
    if vision is not None:
        if not config.vision_config:
            config = config.replace(vision_config=_clip_vision_config(vision, config))
        towers["vision_tower."] = read_clip_vision_folder(vision)
        folders.append(vision)
    audio = _tower_folder("audio", audio_tower, config, finetune)
    if audio is not None:
        if not config.audio_config:
            config = config.replace(audio_config=_whisper_audio_config(audio, config))
        towers["audio_tower."] = read_whisper_encoder_folder(audio)
        folders.append(audio)
    return config, towers, folders


def from_v1_release(
    base: str | Path,
    *folders: str | Path,
    vision_tower: str | Path | None = None,
    audio_tower: str | Path | None = None,
    strict: bool = True,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    model_class: type[UniMoEForCausalLM] | None = None,
) -> UniMoEForCausalLM:
    """A v1 model from its released folders, listed as the releases list them: ``(base, finetune)`` for 4e
    (:func:`read_v1_4e_release`) or ``(base, experts, finetune)`` for 8e (:func:`read_v1_8e_release`). The
    config is the fine-tune's ``config.json`` (the 8e README has users copy ``8config.json`` over the base's).

    The towers come last, from their own Hugging Face folders (``vision_tower=``/``audio_tower=``, else the
    config's ``mm_vision_tower``/``mm_audio_tower`` when that is a local folder), replacing any tower weights the
    base holds: the released towers load with ``delay_load`` after the LLM. An empty ``vision_config`` /
    ``audio_config`` (a released LLaVA config) takes its geometry from those folders. ``model_class`` defaults to
    the omni model; towers are only looked for when it has them. The PEFT adapter must use the config's
    ``lora_r``/``lora_alpha`` (our expert LoRA uses that scale; checked).
    """
    if len(folders) not in (1, 2):
        raise TypeError("from_v1_release(base, finetune) for 4e or from_v1_release(base, experts, finetune) for 8e")
    *experts, finetune = (Path(f) for f in folders)
    config, placement_known = load_config(finetune)
    if bool(experts) != (config.num_experts == 8):
        want = "(base, experts, finetune)" if config.num_experts == 8 else "(base, finetune)"
        raise CheckpointError(f"{finetune / 'config.json'}: num_experts={config.num_experts}; that release is "
                              f"given as {want} (only the 8e release has an experts folder)")
    adapter_config = finetune / "adapter_config.json"
    if adapter_config.is_file():
        peft = json.loads(adapter_config.read_text())
        if (peft.get("r"), peft.get("lora_alpha")) != (config.lora_r, config.lora_alpha):
            raise CheckpointError(f"{adapter_config}: r={peft.get('r')}, lora_alpha={peft.get('lora_alpha')} differ "
                                  f"from the config's lora_r={config.lora_r}, lora_alpha={config.lora_alpha}")
    raw = read_v1_8e_release(base, experts[0], finetune) if experts else read_v1_4e_release(base, finetune)
    model_class = model_class or UniMoEOmni
    tower_folders: list[Path] = []
    if issubclass(model_class, UniMoEOmni):
        config, towers, tower_folders = _v1_towers(config, finetune, vision_tower, audio_tower)
        for prefix, weights in towers.items():
            raw = {k: v for k, v in raw.items() if not _v1_top_level(k.removeprefix(PEFT_PREFIX)).startswith(prefix)}
            raw.update(weights)
    source = " + ".join(str(p) for p in (base, *experts, finetune, *tower_folders))
    return _build_and_load(config, placement_known, raw, source, strict, dtype, device, model_class)


def save_pretrained(
    model: UniMoEForCausalLM, directory: str | Path, layout: str = "released", max_shard_bytes: int = 5 * 2**30,
    v1_style: V1Style | None = None,
) -> Path:
    """Write ``config.json`` and safetensors shards with ``model.safetensors.index.json``.

    ``layout="released"`` splits experts into the released per-expert keys (v1: in ``v1_style``, by default
    :func:`default_v1_style`); ``"stacked"`` keeps ours.
    """
    if layout not in ("released", "stacked"):
        raise ValueError(f"layout must be 'released' or 'stacked', got {layout!r}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    if layout == "released":
        state = to_released(state, model.config, v1_style)
    model.config.save(root / "config.json")

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(state):
        nbytes = state[key].numel() * state[key].element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = state[key]
        size += nbytes
    weight_map = {}
    for n, shard in enumerate(shards, start=1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, root / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True))
    return root
