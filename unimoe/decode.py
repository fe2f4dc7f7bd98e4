"""A decode step with static shapes: one token per row, no host synchronisation, capturable by CUDA graphs.

The eager decode path (:func:`unimoe.model.generate` without ``step``) grows the mask and the key length every
step and groups tokens by expert with ``nonzero`` and a ``.tolist()``: each step synchronises with the host and
launches about a hundred kernels per layer, and at full size on a GPU that, not the weights, sets the step
time. Here every shape is fixed by the batch size and the cache length alone:

- the KV cache and the ``[B, max_len]`` mask are allocated once (lengths rounded up to ``bucket`` slots, so
  prompts of different lengths share one compiled graph) and written in place at a device-side slot index;
  attention reads the whole cache under the mask;
- routing keeps its K slots per token with zero weights for the unused ones, and the experts run as grouped
  GEMMs over slots sorted by expert (:meth:`unimoe.moe.DynamicMoE._experts_static`);
- rows that finished are padding (their ``alive`` flag is data, not a shape), so a batch whose rows end at
  different times never recompiles;
- routing statistics for a probe are added into fixed-shape per-row counts on the device
  (:class:`unimoe.probes.StepRoutingCounts`), handed to the probe once generation ends;
- attention at decode excludes the cuDNN SDPA backend, which builds a plan for every new key length; flash /
  memory-efficient / math take the one-query-per-head layout of :meth:`unimoe.model.Attention.decode`.
  Prefill keeps the default backends (cuDNN is the fastest there).

``DecodeStep(model, compile=True, mode="reduce-overhead")`` compiles the step with ``fullgraph=True`` (any graph
break is an error) and, on CUDA, replays it as a CUDA graph. Eager (``compile=False``) runs the same code;
``backend`` is torch.compile's (``"aot_eager"`` traces without generating code). ``scope="layer"`` compiles one
decoder layer instead of the whole step: the layers share that graph (their weights are its inputs), so it
compiles about as fast as one layer, at the cost of one graph replay per layer and an eager embedding and head.
"""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from unimoe.model import KVCache, UniMoEForCausalLM
from unimoe.probes import StepRoutingCounts

DECODE_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
# eager: no step (the grow-as-you-go path, fastest on the CPU); static: this step uncompiled; compiled: the whole
# step as one graph; compiled-layer: one graph shared by the decoder layers (compiles about as fast as one layer)
DECODE_MODES = ("eager", "static", "compiled", "compiled-layer")


def decode_step(model: UniMoEForCausalLM, mode: str) -> DecodeStep | None:
    """The step for a ``DECODE_MODES`` name (None for eager); compiled steps replay as CUDA graphs on a GPU."""
    if mode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {DECODE_MODES}, got {mode!r}")
    if mode == "eager":
        return None
    on_gpu = model.lm_head.weight.device.type == "cuda"
    return DecodeStep(model, compile=mode != "static", mode="reduce-overhead" if on_gpu else None,
                      scope="layer" if mode == "compiled-layer" else "step")


class DecodeStep:
    """``step(token [B], position [B], slot [1], alive [B]) -> next-token logits [B, V]`` for ``model``.

    :meth:`prepare` (called by :func:`unimoe.model.generate`) returns the cache the prefill fills; the cache
    and mask stay allocated between calls of the same shape, so a CUDA graph recorded once replays on them.
    """

    def __init__(self, model: UniMoEForCausalLM, compile: bool = False, mode: str | None = None, bucket: int = 256,
                 backend: str = "inductor", scope: str = "step"):
        if model.config.moe_type != "dynamic":
            raise ValueError(f"the static decode step supports moe_type 'dynamic', not {model.config.moe_type!r}")
        if bucket < 1:
            raise ValueError(f"bucket must be >= 1, got {bucket}")
        if scope not in ("step", "layer"):
            raise ValueError(f"scope must be 'step' or 'layer', got {scope!r}")
        self.model = model
        self.bucket = bucket
        self.compiled = compile
        self._step, self._layer = self._forward, _layer_decode
        if compile:
            options = {"fullgraph": True, "dynamic": False, "mode": mode, "backend": backend}
            if scope == "step":
                self._step = torch.compile(self._forward, **options)
            else:
                self._layer = torch.compile(_layer_decode, **options)
        self.cache: list[KVCache] = []
        self.mask: torch.Tensor | None = None  # [B, max_len] real tokens over the cache slots
        self.routing: StepRoutingCounts | None = None  # set by prepare(count_routing=True)
        self._counts: StepRoutingCounts | None = None  # kept allocated, like the cache

    def prepare(self, prompt_mask: torch.Tensor, max_new_tokens: int, dtype: torch.dtype,
                count_routing: bool = False) -> list[KVCache]:
        """The static cache for ``prompt_mask [B, T]`` plus ``max_new_tokens``, with the mask set to the prompt;
        ``count_routing`` also zeroes the routing counts the steps add to (:attr:`routing`)."""
        b, t = prompt_mask.shape
        length = -(-(t + max_new_tokens) // self.bucket) * self.bucket
        if (self.mask is None or self.mask.shape != (b, length) or self.mask.device != prompt_mask.device
                or self.cache[0].k.dtype != dtype):
            self.cache = self.model.new_cache(b, length, dtype)
            self.mask = torch.zeros(b, length, dtype=torch.bool, device=prompt_mask.device)
            for tensor in [self.mask, *(c.k for c in self.cache), *(c.v for c in self.cache)]:
                torch._dynamo.mark_static_address(tensor)  # CUDA graphs read them in place, never copy them
        self.mask.zero_()
        self.mask[:, :t] = prompt_mask
        self.routing = None
        if count_routing:
            if self._counts is None or self._counts.tokens.shape[0] != b or self._counts.tokens.device != self.mask.device:
                config = self.model.config
                self._counts = StepRoutingCounts(b, config.num_hidden_layers, config.num_dynamic_experts,
                                                 self.mask.device)
                for tensor in self._counts.buffers():
                    torch._dynamo.mark_static_address(tensor)
            self._counts.zero_()
            self.routing = self._counts
        return self.cache

    def __call__(self, token: torch.Tensor, position: torch.Tensor, slot: torch.Tensor, alive: torch.Tensor
                 ) -> torch.Tensor:
        if self.mask is None:
            raise RuntimeError("DecodeStep.prepare must fill the cache before the first step")
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's logits are consumed
        with sdpa_kernel(DECODE_ATTENTION):
            return self._step(token, position, slot, alive)

    def _forward(self, token: torch.Tensor, position: torch.Tensor, slot: torch.Tensor, alive: torch.Tensor
                 ) -> torch.Tensor:
        lm = self.model
        mask = self.mask.index_copy_(1, slot, alive[:, None])
        x = lm.model.embed_tokens(token[:, None])
        positions = position[:, None]
        if lm.model.rotary.freq_component is not None:  # M-RoPE: a text token has equal t/h/w ids
            positions = positions.expand(3, -1, -1)
        rope = lm.model.rotary(positions, x.dtype)
        # as the eager mask: real slots so far, and every row sees its own slot (a finished row is padding)
        own = torch.arange(mask.shape[1], device=mask.device) == slot
        visible = (mask | own)[:, None, None, :]
        for i, (layer, cache) in enumerate(zip(lm.model.layers, self.cache)):
            x, routing = self._layer(layer, x, rope, visible, alive[:, None], cache, slot)
            if self.routing is not None and routing is not None:
                self.routing.add(i, *routing, layer.mlp.n_routed, alive)
        return lm.lm_head(lm.model.norm(x))[:, -1]


def _layer_decode(layer, x, rope, mask, alive, cache, slot):
    """One decoder layer's decode; compiled alone with ``scope="layer"``, one graph serves every layer.
    Returns the hidden states and the layer's routing as plain tensors (ids, weights, router logits), or None."""
    x, routing = layer.decode(x, rope, mask, alive, cache, slot)
    if routing is None:
        return x, None
    b, t, k = routing.expert_ids.shape
    return x, (routing.expert_ids.reshape(b * t, k), routing.expert_weights.reshape(b * t, k), routing.router_logits)
