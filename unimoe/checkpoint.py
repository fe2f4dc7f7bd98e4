"""Loading and saving Uni-MoE checkpoints without unpickling.

Released layout (architecture report §5): a directory with ``config.json`` and safetensors weights, either
one ``model.safetensors`` or shards listed in ``model.safetensors.index.json``. Expert weights are stored one
module per expert::

    model.layers.{L}.mlp.gate.weight
    model.layers.{L}.mlp.fixed_real_moe.{s}.{gate,up,down}_proj.weight
    model.layers.{L}.mlp.dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{e}.{gate,up,down}_proj.weight

Uni-MoE v1 (4 experts, §5.3) stores ``model.layers.{L}.mlp.experts.{i}.{gate,up,down}_proj.weight``; its LoRA
adapters use PEFT's ``...{proj}.lora_A.weight`` / ``lora_B.weight`` names (the ``base_model.model.`` prefix of
a PEFT adapter file is stripped).

DeepSpeed expert-parallel training instead leaves ``mp_rank_00_model_states.pt`` (dense weights under
``"module"``) plus one ``layer_{moe_layer}_expert_{global_id}_mp_rank_00_model_states.pt`` per expert (§5.2).
Both are read with ``torch.load(weights_only=True)``.

Our model stacks each layer's experts into ``[E, ...]`` tensors; the per-expert <-> stacked mapping is
the only renaming (every other key already has its released name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from unimoe.config import UniMoEConfig
from unimoe.model import UniMoEForCausalLM
from unimoe.rope import RotaryEmbedding

SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_SINGLE = "pytorch_model.bin"
DEEPSPEED_DENSE = "mp_rank_00_model_states.pt"
DEEPSPEED_EXPERT = re.compile(r"layer_(\d+)_expert_(\d+)_mp_rank_00_model_states\.pt")
PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
PEFT_PREFIX = "base_model.model."


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


def _expert_tables(config: UniMoEConfig) -> list[tuple[str, str, int]]:
    """(our stacked name, released per-expert name with ``{i}``, expert count) for one layer's MLP."""
    tables = []
    if config.moe_type == "topk_lora":  # v1 4e: model.layers.L.mlp.experts.i.proj (+ PEFT LoRA names)
        for proj in PROJECTIONS:
            for ours, theirs in (("", ".weight"), ("_lora_A", ".lora_A.weight"), ("_lora_B", ".lora_B.weight")):
                tables.append((f"experts.{proj}{ours}", f"experts.{{i}}.{proj}{theirs}", config.num_experts))
        return tables
    routed = "dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{i}.{proj}.weight"
    shared = "fixed_real_moe.{i}.{proj}.weight"
    for proj in PROJECTIONS:
        tables.append((f"routed_experts.{proj}", routed.replace("{proj}", proj), config.mlp_dynamic_expert_num))
        if config.mlp_fixed_expert_num:
            tables.append((f"shared_experts.{proj}", shared.replace("{proj}", proj), config.mlp_fixed_expert_num))
    return tables


def to_released(state: dict[str, torch.Tensor], config: UniMoEConfig) -> dict[str, torch.Tensor]:
    """Split our stacked expert tensors into the released one-module-per-expert keys."""
    out = {}
    tables = _expert_tables(config)
    for key, value in state.items():
        prefix, suffix = _split_mlp_key(key)
        match = next((t for t in tables if t[0] == suffix), None) if prefix else None
        if match is None:
            out[key] = value
            continue
        _, pattern, count = match
        if value.shape[0] != count:
            raise CheckpointError(f"{key}: expected {count} stacked experts, got shape {tuple(value.shape)}")
        for i in range(count):
            out[prefix + pattern.format(i=i)] = value[i].contiguous()
    return out


def from_released(state: dict[str, torch.Tensor], config: UniMoEConfig) -> dict[str, torch.Tensor]:
    """Stack released per-expert tensors into our ``[E, ...]`` layout; other keys pass through."""
    out: dict[str, torch.Tensor] = {}
    pending: dict[str, dict[int, torch.Tensor]] = {}
    counts: dict[str, int] = {}
    matchers = [
        (ours, re.compile(re.escape(pattern).replace(r"\{i\}", r"(\d+)") + "$"), count)
        for ours, pattern, count in _expert_tables(config)
    ]
    for key, value in state.items():
        key = key.removeprefix(PEFT_PREFIX)
        prefix, suffix = _split_mlp_key(key)
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
        pending.setdefault(stacked, {})[index] = value
        counts[stacked] = count
    for stacked, experts in pending.items():
        count = counts[stacked]
        if sorted(experts) != list(range(count)):
            missing = sorted(set(range(count)) - set(experts))
            raise CheckpointError(f"{stacked}: experts {missing} missing (found {sorted(experts)}, need 0..{count - 1})")
        out[stacked] = torch.stack([experts[i] for i in range(count)])
    return out


def _split_mlp_key(key: str) -> tuple[str | None, str]:
    """``model.layers.3.mlp.x.y`` -> (``model.layers.3.mlp.``, ``x.y``); (None, key) outside an MLP."""
    m = re.match(r"(.*\.layers\.\d+\.mlp\.)(.*)$", key)
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
    raise CheckpointError(
        f"{root}: no weights found (looked for {SAFETENSORS_INDEX}, {SAFETENSORS_SINGLE}, {BIN_INDEX}, "
        f"{BIN_SINGLE}, {DEEPSPEED_DENSE})"
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
    in a full Omni checkpoint); they are skipped instead of reported as unexpected.
    """
    root = Path(directory)
    config_path = root / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{root}: config.json not found")
    config = UniMoEConfig.from_json(config_path)
    with torch.device("meta"):
        model = model_class(config)
    model.model.rotary = RotaryEmbedding.for_config(config)  # computed buffers, not stored in checkpoints
    state = from_released(read_state_dict(root, skip_prefixes=ignore_prefixes), config)
    if config.tie_word_embeddings and "model.embed_tokens.weight" in state:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]  # tied checkpoints store it once
    state = {k: v.to(device=device, dtype=dtype if dtype and v.is_floating_point() else v.dtype) for k, v in state.items()}
    load_state_dict_into(model, state, strict=strict, source=str(root))
    if hasattr(model, "restore_computed_buffers"):  # non-persistent buffers of the towers (position ids...)
        model.restore_computed_buffers(device)
    still_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:
        raise CheckpointError(f"{root}: no weights for {len(still_meta)} tensors, e.g. {still_meta[:5]}")
    return model.to(device).eval()


def save_pretrained(
    model: UniMoEForCausalLM, directory: str | Path, layout: str = "released", max_shard_bytes: int = 5 * 2**30
) -> Path:
    """Write ``config.json`` and safetensors shards with ``model.safetensors.index.json``.

    ``layout="released"`` splits experts into the released per-expert keys; ``"stacked"`` keeps ours.
    """
    if layout not in ("released", "stacked"):
        raise ValueError(f"layout must be 'released' or 'stacked', got {layout!r}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    if layout == "released":
        state = to_released(state, model.config)
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
