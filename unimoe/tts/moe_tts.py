"""MoE-TTS as released (``LLM2TTSCodecAR``, "ar_ori_v2_new"): a Qwen2 decoder whose MLPs are 4-expert top-2
DeepSpeed MoE blocks, turning text token ids into WavTokenizer codes.

Text enters through the generator's **own copy** of the language model's token embedding
(``qwenvl_embed_tokens``, Qwen2.5-VL-3B sized) and the ``in_fnn`` projection; codes and the 9 specials through
``audio_embedding``. One segment is the sequence

    [sopt] voice-prompt text [eopt]  ([sop] previous codes [eop])  [bos] text [eot]  [sos] codes... -> [eos]

with the specials at the released offsets from the code vocabulary ``V = 4096`` (:class:`Specials`). The
released training mask lets the conditioning attend both ways, but the released inference runs the whole
sequence causally (no mask); we train and infer causally, so that what is trained is what runs.

Module names equal the released state-dict keys (``layers.{i}.mlp.deepspeed_moe.gate.wg.weight``,
``...deepspeed_experts.{e}.gate_proj.weight``...), so a released ``speech_generator.*`` dict loads as it is
(:func:`unimoe.tts.checkpoint.load_moe_tts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.config import UniMoEConfig
from unimoe.model import MLP, Attention, KVCache, RMSNorm
from unimoe.rope import RotaryEmbedding
from unimoe.tts.config_io import StrictConfig


@dataclass
class MoETTSConfig(StrictConfig):
    """Field names follow the released ``ModelArguments`` of ``load_moetts``; defaults are the release's."""

    idim: int = 2048  # width of the text embedding copy (Qwen2.5-VL-3B hidden size)
    odim: int = 4096  # WavTokenizer codes (V)
    llm_vocab_size: int = 151_936
    transformer_attention_dim: int = 896  # Qwen2.5-0.5B
    transformer_linear_units: int = 4864
    transformer_num_blocks: int = 24
    transformer_attention_heads: int = 14
    transformer_kv_heads: int = 2
    rope_theta: float = 10_000.0  # Qwen2Config's default: the release does not set it
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 2048
    num_experts: int = 4
    top_k: int = 2
    capacity_factor: float = 1.5  # training only (DeepSpeed drop_tokens); inference is dropless
    min_capacity: int = 4
    prefix_len: int = 10  # codes of the previous segment a segment is conditioned on
    maxcutlen: int = 16  # the cookbook's segment length cap, in text tokens
    speech_start_token_id: int = 151_668
    speech_end_token_id: int = 151_669
    speech_prompt_token_id: int = 151_670
    speech_split_token_id: int = 151_671

    @property
    def head_dim(self) -> int:
        return self.transformer_attention_dim // self.transformer_attention_heads

    def decoder_config(self) -> UniMoEConfig:
        """The Qwen2 attention geometry in the language model's config type (plain RoPE, q/k/v biases)."""
        return UniMoEConfig(
            vocab_size=self.odim + 9, hidden_size=self.transformer_attention_dim,
            intermediate_size=self.transformer_linear_units, num_hidden_layers=self.transformer_num_blocks,
            num_attention_heads=self.transformer_attention_heads, num_key_value_heads=self.transformer_kv_heads,
            rope_theta=self.rope_theta, rope_scaling={}, rms_norm_eps=self.rms_norm_eps, attention_bias=True,
            max_position_embeddings=self.max_position_embeddings, torch_dtype="float32")


@dataclass(frozen=True)
class Specials:
    """The 9 specials after the ``V`` codes, at the released offsets."""

    vocab: int

    @property
    def bos(self) -> int:  # opens the text
        return self.vocab

    @property
    def sos(self) -> int:  # opens the codes
        return self.vocab + 1

    @property
    def eos(self) -> int:
        return self.vocab + 2

    @property
    def pad(self) -> int:
        return self.vocab + 3

    @property
    def sopt(self) -> int:  # voice prompt start / end
        return self.vocab + 4

    @property
    def eopt(self) -> int:
        return self.vocab + 5

    @property
    def sop(self) -> int:  # previous-segment prefix start / end
        return self.vocab + 6

    @property
    def eop(self) -> int:
        return self.vocab + 7

    @property
    def eot(self) -> int:  # closes the text
        return self.vocab + 8


class Top2Gate(nn.Module):
    """DeepSpeed ``TopKGate`` with k = 2: an fp32 linear router, softmax, the two largest probabilities
    renormalised to sum to one. The released DeepSpeed picks the second expert after Gumbel noise; we take it
    deterministically (greedy evaluation must be reproducible). Capacity applies in training only."""

    def __init__(self, dim: int, num_experts: int):
        super().__init__()
        self.wg = nn.Linear(dim, num_experts, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [N, d]`` -> (probabilities ``[N, E]``, expert ids ``[N, 2]``, first choice first)."""
        probs = F.linear(x.float(), self.wg.weight.float()).softmax(dim=-1)
        return probs, probs.topk(2, dim=-1).indices


class DeepSpeedExperts(nn.Module):
    def __init__(self, num_experts: int, dim: int, hidden: int):
        super().__init__()
        self.deepspeed_experts = nn.ModuleList(MLP(dim, hidden) for _ in range(num_experts))


class MoEBlock(nn.Module):
    """The DeepSpeed ``MoE(num_experts=4, k=2)`` MLP: each token's output is the weighted sum of its two
    experts' SwiGLU outputs. In training, experts over capacity ``ceil(2 · cf · N / E)`` drop the latest tokens
    (position order, first choices before second choices), and the load-balancing loss ``E² · mean(me · ce)``
    is returned."""

    def __init__(self, config: MoETTSConfig):
        super().__init__()
        self.num_experts = config.num_experts
        self.capacity_factor = config.capacity_factor
        self.min_capacity = config.min_capacity
        self.deepspeed_moe = nn.Module()
        self.deepspeed_moe.gate = Top2Gate(config.transformer_attention_dim, config.num_experts)
        self.deepspeed_moe.experts = DeepSpeedExperts(
            config.num_experts, config.transformer_attention_dim, config.transformer_linear_units)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probs, ids = self.deepspeed_moe.gate(flat)
        aux = (probs.mean(0) * F.one_hot(ids[:, 0], self.num_experts).float().mean(0)).sum() * self.num_experts
        keep = torch.ones_like(ids, dtype=torch.bool)
        if self.training:
            keep = self._within_capacity(ids)
        chosen = probs.gather(1, ids) * keep
        weights = chosen / chosen.sum(-1, keepdim=True).clamp_min(torch.finfo(chosen.dtype).eps)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.deepspeed_moe.experts.deepspeed_experts):
            token, slot = torch.nonzero((ids == e) & keep, as_tuple=True)
            if token.numel():
                y = expert(flat[token]) * weights[token, slot, None].to(flat.dtype)
                out.index_add_(0, token, y)
        return out.view(shape), aux

    def _within_capacity(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[0]
        capacity = min(n, max(math.ceil(n / self.num_experts * self.capacity_factor * 2), self.min_capacity))
        first = F.one_hot(ids[:, 0], self.num_experts)
        second = F.one_hot(ids[:, 1], self.num_experts)
        loc1 = first.cumsum(0) - 1
        loc2 = second.cumsum(0) - 1 + first.sum(0, keepdim=True)
        keep1 = ((loc1 < capacity) & first.bool()).any(-1)
        keep2 = ((loc2 < capacity) & second.bool()).any(-1)
        return torch.stack([keep1, keep2], dim=-1)


class TTSDecoderLayer(nn.Module):
    def __init__(self, config: MoETTSConfig):
        super().__init__()
        decoder = config.decoder_config()
        self.input_layernorm = RMSNorm(config.transformer_attention_dim, config.rms_norm_eps)
        self.self_attn = Attention(decoder)
        self.post_attention_layernorm = RMSNorm(config.transformer_attention_dim, config.rms_norm_eps)
        self.mlp = MoEBlock(config)

    def forward(self, x, rope, mask, cache=None, cache_start=0) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, cache, cache_start)
        out, aux = self.mlp(self.post_attention_layernorm(x))
        return x + out, aux


@dataclass
class TTSOutput:
    logits: torch.Tensor  # [B, T_codes + 1, V + 9]: predictions at the sos and code positions
    loss: torch.Tensor | None = None  # cross-entropy on codes + eos (pads ignored)
    aux_loss: torch.Tensor | None = None  # load balancing, averaged over layers


class MoETTS(nn.Module):
    def __init__(self, config: MoETTSConfig):
        super().__init__()
        self.config = config
        self.specials = Specials(config.odim)
        d = config.transformer_attention_dim
        self.qwenvl_embed_tokens = nn.Embedding(config.llm_vocab_size, config.idim)
        self.in_fnn = nn.Linear(config.idim, d)
        self.audio_embedding = nn.Embedding(config.odim + 9, d, padding_idx=self.specials.pad)
        self.layers = nn.ModuleList(TTSDecoderLayer(config) for _ in range(config.transformer_num_blocks))
        self.norm = RMSNorm(d, config.rms_norm_eps)
        self.out_fnn = nn.Linear(d, config.odim + 9)
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_theta)

    # ---- inputs
    def _audio(self, *ids: int, device=None) -> torch.Tensor:
        return self.audio_embedding(torch.tensor(ids, device=device))

    def condition(self, text: torch.Tensor, prompt: torch.Tensor | None = None,
                  prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``[L, d]`` of one segment's conditioning, up to and including ``sos``.

        ``text``/``prompt`` are language-model token ids ``[T]``, ``prefix`` the previous segment's last codes.
        """
        s, device = self.specials, text.device
        parts = []
        if prompt is not None and prompt.numel():
            parts += [self._audio(s.sopt, device=device), self.in_fnn(self.qwenvl_embed_tokens(prompt)),
                      self._audio(s.eopt, device=device)]
        if prefix is not None and prefix.numel():
            parts += [self._audio(s.sop, device=device), self.audio_embedding(prefix), self._audio(s.eop, device=device)]
        parts += [self._audio(s.bos, device=device), self.in_fnn(self.qwenvl_embed_tokens(text)),
                  self._audio(s.eot, s.sos, device=device)]
        return torch.cat(parts)

    # ---- decoder
    def decode(self, h: torch.Tensor, start: int = 0, caches: list[KVCache] | None = None,
               attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the layers on ``h [B, T, d]`` at positions ``start..``; returns (logits, mean aux loss)."""
        b, t, _ = h.shape
        positions = torch.arange(start, start + t, device=h.device).expand(b, t)
        rope = self.rotary(positions, h.dtype)
        total = start + t
        causal = torch.ones(t, total, dtype=torch.bool, device=h.device).tril(start)
        mask = causal[None, None]
        if attention_mask is not None:
            mask = mask & attention_mask[:, None, None, :total].bool()
        aux = h.new_zeros((), dtype=torch.float32)
        for i, layer in enumerate(self.layers):
            h, layer_aux = layer(h, rope, mask, None if caches is None else caches[i], start)
            aux = aux + layer_aux
        return self.out_fnn(self.norm(h)), aux / len(self.layers)

    def forward(self, conditions: list[torch.Tensor], codes: list[torch.Tensor]) -> TTSOutput:
        """Teacher-forced training step on a batch of segments (``conditions`` from :meth:`condition`, ``codes``
        ``[T_i]`` the target codes). Rows are right-padded; the loss covers every code and the closing eos."""
        s = self.specials
        rows, targets, lengths = [], [], []
        for cond, code in zip(conditions, codes):
            rows.append(torch.cat([cond, self.audio_embedding(code)]))
            target = torch.full((cond.shape[0] + code.shape[0],), -100, dtype=torch.long, device=code.device)
            target[cond.shape[0] - 1:] = torch.cat([code, code.new_tensor([s.eos])])
            targets.append(target)
            lengths.append(rows[-1].shape[0])
        width = max(lengths)
        h = torch.stack([F.pad(r, (0, 0, 0, width - r.shape[0])) for r in rows])
        y = torch.stack([F.pad(t, (0, width - t.shape[0]), value=-100) for t in targets])
        mask = torch.arange(width, device=h.device)[None] < torch.tensor(lengths, device=h.device)[:, None]
        logits, aux = self.decode(h, attention_mask=mask)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=-100)
        return TTSOutput(logits=logits, loss=loss, aux_loss=aux)

    @torch.inference_mode()
    def generate(self, text: torch.Tensor, prompt: torch.Tensor | None = None, prefix: torch.Tensor | None = None,
                 max_tokens: int = 1000) -> torch.Tensor:
        """Greedy (top-k 1, the released setting) codes ``[T]`` for one segment, stopping at eos.

        Non-code specials predicted mid-sequence are mapped into the code range (``% V``), as the release
        sends ``codes % 4096`` to the codec."""
        cond = self.condition(text, prompt, prefix)[None]
        length = min(cond.shape[1] + max_tokens, self.config.max_position_embeddings)
        dtype = cond.dtype
        caches = [KVCache(1, self.config.transformer_kv_heads, length, self.config.head_dim, dtype, cond.device)
                  for _ in self.layers]
        logits, _ = self.decode(cond, 0, caches)
        out: list[int] = []
        pos = cond.shape[1]
        while len(out) < max_tokens and pos < length:
            token = int(logits[0, -1].argmax())
            if token == self.specials.eos:
                break
            out.append(token)
            logits, _ = self.decode(self.audio_embedding(torch.tensor([[token]], device=cond.device)), pos, caches)
            pos += 1
        return torch.tensor(out, dtype=torch.long) % self.config.odim


PRESETS: dict[str, dict[str, Any]] = {
    "released": {},  # Uni-MoE-2.0-Omni's speech generator ("1.2B-A0.7B" with the 2048-wide embedding copy)
    # the tiny generator shipped with unimoe_tiny: same structure, the same Qwen2.5 vocabulary
    "tiny": dict(idim=32, transformer_attention_dim=128, transformer_linear_units=256, transformer_num_blocks=4,
                 transformer_attention_heads=4, transformer_kv_heads=2, max_position_embeddings=1024),
}


def preset(name: str, **changes: Any) -> MoETTSConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown MoE-TTS preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return MoETTSConfig(**{**PRESETS[name], **changes})
