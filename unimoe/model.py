"""The Uni-MoE language decoder: Qwen2.5 attention (GQA, q/k/v bias, M-RoPE) with a MoE block as the
MLP of every MoE layer (all of them in Uni-MoE-2; even ones in v1's "interval" placement, dense SwiGLU
elsewhere), an LM head, a static KV cache, and generation.

Module names mirror the released checkpoints (``model.layers.{i}.self_attn.q_proj``, ``model.norm``,
``lm_head``...) so that only the MoE keys need mapping (see :mod:`unimoe.checkpoint`).

:func:`generate` decodes eagerly, or with the static-shape step of :mod:`unimoe.decode` (compiled, CUDA graphs).

Padding convention: batches are left-padded. ``attention_mask`` ``[B, S]`` marks real tokens over every cache
slot seen so far (the cached prefix plus the new tokens), as in transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.config import UniMoEConfig
from unimoe.moe import build_moe
from unimoe.probes import TEXT, RoutingProbe
from unimoe.rope import RotaryEmbedding, apply_rotary

if TYPE_CHECKING:
    from unimoe.decode import DecodeStep

IGNORE_INDEX = -100


class RMSNorm(nn.Module):
    """Qwen2/Llama RMSNorm: normalise in fp32, scale in the input dtype."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * F.rms_norm(x.float(), x.shape[-1:], eps=self.eps).to(x.dtype)


class KVCache(nn.Module):
    """Preallocated keys/values ``[B, H_kv, max_len, D]`` for one layer (gpt-fast style).

    All rows share slot indices (left padding), so one integer ``start`` addresses the write.
    """

    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int, dtype: torch.dtype, device=None):
        super().__init__()
        shape = (batch, kv_heads, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def update(self, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} slots; writing up to slot {end}")
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]

    def write(self, slot: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one token's keys/values at the device-side index ``slot`` ``[1]`` and return the whole cache:
        the decode step's shapes do not depend on how many slots are filled (the mask hides the rest)."""
        self.k.index_copy_(2, slot, k)
        self.v.index_copy_(2, slot, v)
        return self.k, self.v


class Attention(nn.Module):
    """Grouped-query self-attention with Qwen2's q/k/v biases, rotary positions and SDPA."""

    def __init__(self, config: UniMoEConfig):
        super().__init__()
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"{self.n_heads} heads are not a multiple of {self.n_kv_heads} KV heads")
        bias = config.attention_bias
        d = config.hidden_size
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor,
        cache: KVCache | None = None,
        cache_start: int = 0,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(cache_start, k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.n_kv_heads != self.n_heads)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))

    def decode(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor, cache: KVCache,
               slot: torch.Tensor) -> torch.Tensor:
        """One new token per row (``x [B, 1, d]``) written at ``slot`` and attending to the whole static cache
        under ``mask [B, 1, 1, max_len]``. The query heads that share a KV head become that head's query rows,
        so SDPA needs no GQA support (every backend takes it) and reads each KV head once."""
        b = x.shape[0]
        q = self.q_proj(x).view(b, 1, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, 1, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, 1, self.n_kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        keys, values = cache.write(slot, k, v)
        q = q.reshape(b, self.n_kv_heads, self.n_heads // self.n_kv_heads, self.head_dim)  # head h reads KV h // g
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.o_proj(y.reshape(b, 1, self.n_heads * self.head_dim))


class MLP(nn.Module):
    """Dense SwiGLU FFN for the layers that are not MoE (v1 "interval" placement, dense warm-up)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: UniMoEConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.is_moe = config.is_moe_layer(layer_idx)
        self.mlp = build_moe(config) if self.is_moe else MLP(config.hidden_size, config.intermediate_size)

    def forward(self, x, rope, mask, token_mask, token_weights, cache=None, cache_start=0):
        """Returns the new residual stream and the MoE routing (None for a dense layer)."""
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, cache, cache_start)
        h = self.post_attention_layernorm(x)
        if not self.is_moe:
            return x + self.mlp(h), None
        out, routing = self.mlp(h, token_mask, token_weights)
        return x + out, routing

    def decode(self, x, rope, mask, alive, cache, slot):
        """:meth:`forward` for one token per row with static shapes (see :mod:`unimoe.decode`); ``alive [B, 1]``
        marks the rows still generating (the others are padding: shared experts only). Returns the new hidden
        states and the MoE layer's routing (None for a dense layer)."""
        x = x + self.self_attn.decode(self.input_layernorm(x), rope, mask, cache, slot)
        h = self.post_attention_layernorm(x)
        if not self.is_moe:
            return x + self.mlp(h), None
        out, routing = self.mlp(h, alive, None, static_shapes=True)
        return x + out, routing


@dataclass
class CausalLMOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None  # cross-entropy only; add ``l_aux_weight * aux_loss`` for training
    aux_loss: torch.Tensor | None = None  # load-balancing loss averaged over layers (§1.6); training/labels only
    hidden_states: torch.Tensor | None = None  # final normed hidden states


class UniMoEModel(nn.Module):
    """Embeddings, decoder layers and final norm (``model.*`` in the released checkpoints)."""

    def __init__(self, config: UniMoEConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary = RotaryEmbedding.for_config(config)


class UniMoEForCausalLM(nn.Module):
    """Decoder + LM head. ``forward`` takes token ids or ready embeddings (media features already scattered in)."""

    def __init__(self, config: UniMoEConfig):
        super().__init__()
        self.config = config
        self.model = UniMoEModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)

    def new_cache(self, batch: int, max_len: int, dtype: torch.dtype | None = None) -> list[KVCache]:
        """One static cache per layer for ``batch`` rows and ``max_len`` slots (prompt + new tokens)."""
        c = self.config
        dtype = dtype or self.lm_head.weight.dtype
        device = self.lm_head.weight.device
        return [KVCache(batch, c.num_key_value_heads, max_len, c.head_dim, dtype, device) for _ in range(c.num_hidden_layers)]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        token_weights: torch.Tensor | None = None,
        cache: list[KVCache] | None = None,
        cache_start: int = 0,
        last_token_only: bool = False,
        labels_only_logits: bool = False,
        probe: RoutingProbe | None = None,
        modality_ids: torch.Tensor | None = None,
    ) -> CausalLMOutput:
        """Run the decoder on ``T`` new tokens that occupy cache slots ``[cache_start, cache_start + T)``.

        Args:
            input_ids / inputs_embeds: ``[B, T]`` ids or ``[B, T, d]`` embeddings (exactly one).
            attention_mask: ``[B, cache_start + T]``, 1 for real tokens (default: all real).
            position_ids: ``[3, B, T]`` (Omni 3D, from :func:`unimoe.rope.build_position_ids`) or ``[B, T]``;
                default: count real tokens, so left padding is transparent.
            labels: ``[B, T]`` targets aligned with the inputs (shifted here), ``-100`` ignored.
            token_weights: ``[B, T]`` weights of the aux loss (§1.6); pads are zeroed through the mask.
            labels_only_logits: with ``labels``, apply the LM head only where a label is predicted (training:
                the same loss at a fraction of the cost); ``logits`` then holds those rows only.
            probe / modality_ids: routing statistics sink and the ``[B, T]`` modality of every token.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        x = self.model.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        b, t, _ = x.shape
        end = cache_start + t
        if attention_mask is None:
            attention_mask = torch.ones(b, end, dtype=torch.bool, device=x.device)
        attention_mask = attention_mask.bool()
        if attention_mask.shape != (b, end):
            raise ValueError(f"attention_mask must be [B, cache_start + T] = {(b, end)}, got {tuple(attention_mask.shape)}")
        token_mask = attention_mask[:, cache_start:]
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, cache_start:]
        rope = self.model.rotary(position_ids, x.dtype)
        mask = attention_mask_4d(attention_mask, cache_start, t)
        if token_weights is not None:
            token_weights = token_weights * token_mask

        want_aux = self.training or labels is not None  # the load-balancing loss only serves training
        aux_losses = []
        for i, layer in enumerate(self.model.layers):
            x, routing = layer(x, rope, mask, token_mask, token_weights, None if cache is None else cache[i], cache_start)
            if want_aux and routing is not None:
                aux_losses.append(routing.aux_loss)
            if probe is not None and routing is not None:
                probe.record(i, routing, modality_ids, token_mask)
        hidden = self.model.norm(x)
        loss = None
        if labels is not None and labels_only_logits:
            # training: only positions that predict a label need the (vocabulary-wide) head
            targets = labels[:, 1:]
            picked = hidden[:, :-1][targets != IGNORE_INDEX]
            logits = self.lm_head(picked)
            loss = F.cross_entropy(logits.float(), targets[targets != IGNORE_INDEX])
        else:
            logits = self.lm_head(hidden[:, -1:] if last_token_only else hidden)
            if labels is not None:
                loss = F.cross_entropy(
                    logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
                )
        aux = torch.stack(aux_losses).mean() if aux_losses else None
        return CausalLMOutput(logits=logits, loss=loss, aux_loss=aux, hidden_states=hidden)


def attention_mask_4d(attention_mask: torch.Tensor, cache_start: int, t: int) -> torch.Tensor:
    """Boolean ``[B, 1, T, S]`` SDPA mask: causal over cache slots and blind to padded keys.

    A padded query row would see no key at all (NaN rows), so every query may always see itself.
    """
    s = attention_mask.shape[1]
    q_slot = torch.arange(cache_start, cache_start + t, device=attention_mask.device)[:, None]
    k_slot = torch.arange(s, device=attention_mask.device)[None, :]
    visible = (k_slot <= q_slot) & (attention_mask[:, None, :] | (k_slot == q_slot))
    return visible[:, None]


# ------------------------------------------------------------------------------------------------------
# Generation


@dataclass
class GenerationResult:
    tokens: list[list[int]]  # new tokens per row, eos and everything after it removed
    texts: list[str] | None  # decoded new text per row, cut at the first stop string (needs ``decode``)
    finish_reasons: list[str]  # "eos", "stop" or "length"


def sample_next_token(
    logits: torch.Tensor, temperature: float = 0.0, top_p: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Greedy when ``temperature == 0``; otherwise nucleus sampling from ``softmax(logits / temperature)``."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always survives)
        drop = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.inference_mode()
def generate(
    model: UniMoEForCausalLM,
    input_ids: torch.Tensor | None = None,
    *,
    inputs_embeds: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    max_new_tokens: int = 32,
    eos_token_id: int | list[int] | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    stop_strings: tuple[str, ...] = (),
    decode: Callable[[list[int]], str] | None = None,
    use_cache: bool = True,
    probe: RoutingProbe | None = None,
    modality_ids: torch.Tensor | None = None,
    step: DecodeStep | None = None,
) -> GenerationResult:
    """Generate up to ``max_new_tokens`` per row for a left-padded batch.

    Rows stop at an eos token or when their decoded new text contains a stop string (the text is cut
    there). ``position_ids`` may be the prompt's 3-D ids; new tokens continue from each row's largest id,
    as Qwen2-VL's ``rope_deltas`` do. ``use_cache=False`` recomputes the whole sequence each step (slow;
    it exists to check the cache). ``step`` (a :class:`unimoe.decode.DecodeStep`) decodes with static
    shapes, compiled if it was built so: the same tokens, with no host sync inside a step and a check for
    finished rows every ``FINISH_CHECK_EVERY`` steps (or every step with stop strings, which read the text);
    a ``probe`` gets the step's routing counts (accumulated on the device) when generation ends.
    """
    if stop_strings and decode is None:
        raise ValueError("stop_strings need a decode function to read the generated text")
    if step is not None and not use_cache:
        raise ValueError("the static decode step needs the cache (use_cache=True)")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids and inputs_embeds")
    prompt = model.model.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
    b, t, _ = prompt.shape
    device = prompt.device
    mask = torch.ones(b, t, dtype=torch.bool, device=device) if attention_mask is None else attention_mask.bool()
    if position_ids is None:
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
    flat = position_ids if position_ids.dim() == 2 else position_ids.amax(0)
    next_position = flat.masked_fill(~mask, -1).amax(-1) + 1  # [B]
    eos = torch.tensor([] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else eos_token_id,
                       device=device)

    if step is not None:
        cache = step.prepare(mask, max_new_tokens, prompt.dtype, count_routing=probe is not None)
    else:
        cache = model.new_cache(b, t + max_new_tokens, prompt.dtype) if use_cache else None
    out = model(inputs_embeds=prompt, attention_mask=mask, position_ids=position_ids, cache=cache,
                last_token_only=True, probe=probe, modality_ids=modality_ids)
    logits = out.logits[:, -1]
    steps: list[torch.Tensor] = []
    stopped_at: dict[int, int] = {}  # row -> step whose text first held a stop string
    # finished rows keep stepping with the batch but as padding: no routing, not counted by the probe
    alive = torch.ones(b, dtype=torch.bool, device=device)
    slot = torch.full((1,), t, dtype=torch.long, device=device)
    embeds, positions = prompt, position_ids
    for i in range(max_new_tokens):
        token = sample_next_token(logits, temperature, top_p, generator)
        steps.append(token)
        if eos.numel():
            alive = alive & ~torch.isin(token, eos)
        if stop_strings:
            live = alive.tolist()
            for row in range(b):
                if live[row] and _has_stop(decode([int(s[row]) for s in steps]), stop_strings):
                    stopped_at[row] = i
            if stopped_at:
                alive = alive.index_fill(0, torch.tensor(list(stopped_at), device=device), False)
        if i == max_new_tokens - 1:
            break
        if (step is None or stop_strings or i % FINISH_CHECK_EVERY == FINISH_CHECK_EVERY - 1) and not alive.any():
            break
        step_position = next_position + i
        if step is not None:
            logits = step(token, step_position, slot, alive)
            slot = slot + 1
            continue
        step_embed = model.model.embed_tokens(token[:, None])
        step_position = step_position[:, None]
        if position_ids.dim() == 3:
            step_position = step_position.expand(3, -1, -1)
        mask = torch.cat([mask, alive[:, None]], dim=1)
        if use_cache:
            text_modality = None if modality_ids is None else modality_ids.new_full((b, 1), TEXT)
            out = model(inputs_embeds=step_embed, attention_mask=mask, position_ids=step_position, cache=cache,
                        cache_start=t + i, last_token_only=True, probe=probe, modality_ids=text_modality)
        else:
            embeds = torch.cat([embeds, step_embed], dim=1)
            positions = torch.cat([positions, step_position], dim=-1)
            out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, last_token_only=True)
        logits = out.logits[:, -1]

    if step is not None and probe is not None:
        probe.add_step_counts(step.routing)
    rows = torch.stack(steps, dim=1).tolist()
    kept, reasons = _finish(rows, eos.tolist(), stopped_at)
    tokens = [row[:n] for row, n in zip(rows, kept)]
    texts = None
    if decode is not None:
        texts = [_cut_at_stop(decode(seq), stop_strings) for seq in tokens]
    return GenerationResult(tokens=tokens, texts=texts, finish_reasons=reasons)


FINISH_CHECK_EVERY = 8  # static decode steps between host checks for an all-finished batch


def _finish(rows: list[list[int]], eos: list[int], stopped_at: dict[int, int]) -> tuple[list[int], list[str]]:
    """Tokens each row keeps and why it ended: its first eos (dropped) unless a stop string came at an earlier
    step (kept through that step), else the length limit. Tokens a finished row produced later are padding."""
    kept, reasons = [], []
    for row, tokens in enumerate(rows):
        first_eos = next((i for i, token in enumerate(tokens) if token in eos), None)
        stop = stopped_at.get(row)
        if first_eos is not None and (stop is None or first_eos <= stop):
            kept.append(first_eos), reasons.append("eos")
        elif stop is not None:
            kept.append(stop + 1), reasons.append("stop")
        else:
            kept.append(len(tokens)), reasons.append("length")
    return kept, reasons


def _has_stop(text: str, stop_strings: tuple[str, ...]) -> bool:
    return any(s in text for s in stop_strings)


def _cut_at_stop(text: str, stop_strings: tuple[str, ...]) -> str:
    cuts = [text.find(s) for s in stop_strings if s in text]
    return text[: min(cuts)] if cuts else text
