"""``model=hf``: any transformers checkpoint (a local folder or a hub id) as a peer model in the harness.

The checkpoint's config picks the class (:mod:`harness.models.hf_load`): causal LMs, image/video/audio-text
multimodal LMs and Whisper-family speech seq2seq models. Generation is greedy (or sampled, when the task
asks), batched with left padding, stopped at the task's stop strings and ``max_new_tokens``; a request
holding a medium the model does not take is answered with a per-sample error naming both. Causal LMs also
score text (:meth:`HFAdapter.loglikelihood`, lm-eval's semantics). The fingerprint hashes the weight files,
so new weights never reuse cached answers of old ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.api import GenerationConfig, LoglikelihoodRequest, Request, Response, stable_hash
from harness.models import hf_inputs, likelihood
from harness.models.hf_load import Loaded, load, load_config, resolve_folder
from harness.models.weights import update_with_files, weight_files

# files besides the weights that change what a checkpoint answers
_IDENTITY_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                   "chat_template.jinja", "chat_template.json", "preprocessor_config.json",
                   "processor_config.json", "video_preprocessor_config.json")


class HFAdapter:
    def __init__(self, name: str, path: str | None = None, dtype: str = "float32", device: str = "cpu",
                 device_map: Any = None, attn_implementation: str | None = None, gguf_file: str | None = None,
                 trust_remote_code: bool = False, chat_template: bool = True, system_prompt: str | None = None,
                 likelihood_batch_size: int = 8):
        self.name = name
        self.folder = resolve_folder(name, path, gguf_file)
        self.settings = {"dtype": dtype, "device": device, "device_map": device_map,
                         "attn_implementation": attn_implementation, "gguf_file": gguf_file,
                         "trust_remote_code": bool(trust_remote_code)}
        self.chat_template = chat_template
        self.system_prompt = system_prompt
        self.likelihood_batch_size = likelihood_batch_size
        self._loaded: Loaded | None = None
        self.config = load_config(name, self.folder, gguf_file, bool(trust_remote_code))
        self._fingerprint = stable_hash({"hf": self._weights_digest(), "dtype": dtype, "gguf_file": gguf_file,
                                         "chat_template": chat_template, "system_prompt": system_prompt})

    # ---- identity
    def _weights_digest(self) -> str:
        gguf = self.settings["gguf_file"]
        digest = hashlib.sha256()
        for name in _IDENTITY_FILES:
            if (self.folder / name).is_file():
                digest.update(name.encode() + (self.folder / name).read_bytes())
        update_with_files(digest, [self.folder / gguf] if gguf else weight_files(self.folder))
        return digest.hexdigest()

    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def loaded(self) -> Loaded:
        if self._loaded is None:
            self._loaded = load(self.name, Path(self.folder), self.config, **self.settings)
        return self._loaded

    # ---- generation
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        loaded = self.loaded
        out: list[Response | None] = [None] * len(requests)
        groups: dict[GenerationConfig, list[int]] = {}
        for i, request in enumerate(requests):
            medium = hf_inputs.missing_modality(request, loaded.modalities)
            if loaded.kind == "speech_seq2seq" and medium is None and not request.media():
                medium = "text-only input"
            if medium is not None:
                out[i] = Response(error=f"model {self.name} takes no {medium} ({request.task}/{request.doc_id})")
            else:
                groups.setdefault(request.generation, []).append(i)
        for generation, indices in groups.items():
            for i, response in zip(indices, self._generate_group([requests[i] for i in indices], generation)):
                out[i] = response
        return [r for r in out if r is not None]

    def _generate_group(self, requests: list[Request], generation: GenerationConfig) -> list[Response]:
        import torch

        loaded = self.loaded
        if loaded.kind == "speech_seq2seq":
            inputs = hf_inputs.speech_inputs(loaded.processor, requests)
        elif loaded.kind == "multimodal":
            prompts = [hf_inputs.multimodal_prompt(r, loaded.processor, self.system_prompt) for r in requests]
            inputs = hf_inputs.processor_inputs(loaded.processor, prompts)
        else:
            texts = [hf_inputs.text_prompt(r, loaded.tokenizer, self.chat_template, self.system_prompt)
                     for r in requests]
            loaded.tokenizer.padding_side = "left"
            inputs = loaded.tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt")
        model = loaded.model
        inputs = {k: _to(v, model) for k, v in inputs.items()}
        options: dict[str, Any] = {"max_new_tokens": generation.max_new_tokens, "do_sample": generation.do_sample}
        if generation.do_sample:
            options.update(temperature=generation.temperature, top_p=generation.top_p)
            if generation.seed is not None:
                torch.manual_seed(generation.seed)
        prompt_len = 0 if loaded.kind == "speech_seq2seq" else inputs["input_ids"].shape[1]
        if generation.until and prompt_len:
            options["stopping_criteria"] = [_StopStrings(loaded.tokenizer, generation.until, prompt_len)]
        pad_id = loaded.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = loaded.tokenizer.eos_token_id
        with torch.inference_mode():
            output = model.generate(**inputs, pad_token_id=pad_id, **options)
        new = output[:, prompt_len:]
        responses = []
        for row in range(len(requests)):
            tokens = [t for t in new[row].tolist() if t != pad_id]
            text = _cut_at_stops(loaded.tokenizer.decode(tokens, skip_special_tokens=True), generation.until)
            stats: dict[str, Any] = {"new_tokens": len(tokens)}
            if "attention_mask" in inputs and prompt_len:
                stats["prompt_tokens"] = int(inputs["attention_mask"][row].sum())
                stats.update(_media_token_counts(model.config, inputs["input_ids"][row]))
            responses.append(Response(text=text, stats=stats))
        return responses

    # ---- likelihood
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, bool]]:
        """lm-eval's ``loglikelihood`` on the raw strings (no chat template), right-padded batches."""
        loaded = self.loaded
        if loaded.kind != "causal_lm":
            raise NotImplementedError(f"model {self.name}: likelihood scoring needs a causal LM, not {loaded.kind}")
        tokenizer, model = loaded.tokenizer, loaded.model

        def forward(ids, mask, keep):
            return model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                         logits_to_keep=keep).logits

        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else prefix
        return likelihood.score(forward, lambda s: tokenizer.encode(s, add_special_tokens=False), requests,
                                prefix_id=prefix, pad_id=pad, batch_size=self.likelihood_batch_size)


class _StopStrings:
    """Stops each row once its new text holds a stop string (decoding only each row's last few tokens, so a
    step costs the same whatever the vocabulary size; transformers' own stop_strings preprocesses the whole
    vocabulary per call)."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, [s for s in stops if s], prompt_len
        self.lookback = max(len(s) for s in self.stops) + 2 if self.stops else 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        tails = self.tokenizer.batch_decode(input_ids[:, max(self.prompt_len, input_ids.shape[1] - self.lookback):])
        return torch.tensor([any(s in tail for s in self.stops) for tail in tails], device=input_ids.device)


def _to(value: Any, model: Any) -> Any:
    """A tensor moved to the model's device (floating inputs also to its dtype)."""
    import torch

    if not torch.is_tensor(value):
        return value
    if value.is_floating_point():
        return value.to(model.device, model.dtype)
    return value.to(model.device)


def _cut_at_stops(text: str, until: Sequence[str]) -> str:
    """The text before the first stop string (generation may run past one inside a batch)."""
    cut = min((text.find(s) for s in until if s and s in text), default=len(text))
    return text[:cut]


def _media_token_counts(config: Any, input_ids: Any) -> dict[str, int]:
    """How many image/video/audio placeholder tokens the prompt holds (what the model's encoders fill)."""
    counts = {}
    for kind in ("image", "video", "audio"):
        token_id = getattr(config, f"{kind}_token_id", None)
        if token_id is None:
            token_id = getattr(config, f"{kind}_token_index", None)
        if token_id is not None:
            counts[f"{kind}_tokens"] = int((input_ids == token_id).sum())
    return counts
