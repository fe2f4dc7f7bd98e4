"""The bridge from the harness to :mod:`unimoe`: typed requests in, text plus routing statistics out.

Media are decoded here (``harness.media``) at the request's fps and frame cap; the processor and the model
come from ``unimoe``. Every response carries the sample's routing counts per modality and layer
(``stats["routing"]``, additive, see :mod:`harness.routing_report`). Requests run one at a time, as the
released evaluation wrapper does, so that the statistics are the sample's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from harness.api import AudioPart, ImagePart, Request, Response, TextPart, VideoPart, stable_hash

HUB_IDS = {"unimoe2_omni": "HIT-TMG/Uni-MoE-2.0-Omni", "unimoe_8e": "HIT-TMG/Uni-MoE (Uni_MoE_8e checkpoint)"}


class CheckpointMissing(FileNotFoundError):
    pass


FULL_HASH_LIMIT = 1 << 30  # bytes; larger checkpoints are fingerprinted from samples of their content
_SAMPLES, _SAMPLE_BYTES = 64, 1 << 16


def weights_digest(root: Path) -> str:
    """A digest of a checkpoint folder's content (config and weight files), the key of cached responses.

    Two trainings write files of identical names and sizes, so names and sizes cannot tell them apart: small
    checkpoints are hashed whole; multi-GB releases hash their size plus 64 evenly spaced 64 KiB samples of
    every weight file (any retraining changes every sample), which reads ~4 MB instead of the whole release.
    """
    digest = hashlib.sha256((root / "config.json").read_bytes())
    files = sorted(p for p in root.iterdir() if p.suffix in (".safetensors", ".pt", ".bin") and p.is_file())
    whole = sum(f.stat().st_size for f in files) <= FULL_HASH_LIMIT
    for f in files:
        size = f.stat().st_size
        digest.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            if whole:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
                continue
            for i in range(_SAMPLES):
                fh.seek(i * max(0, size - _SAMPLE_BYTES) // (_SAMPLES - 1))
                digest.update(fh.read(_SAMPLE_BYTES))
    return digest.hexdigest()


class UniMoEAdapter:
    def __init__(self, name: str, checkpoint: str | None = None, preset: str = "tiny_omni", init: str = "checkpoint",
                 seed: int = 0, dtype: str = "float32", device: str = "cpu", system_prompt: str | None = None):
        self.name = name
        self.checkpoint = checkpoint
        self.preset = preset
        self.init = init
        self.seed = seed
        self.dtype = dtype
        self.device = device
        self.system_prompt = system_prompt
        self._model = None
        self._processor = None
        self._fingerprint = self._compute_fingerprint()

    # ---- identity
    def _compute_fingerprint(self) -> str:
        if self.init == "random":
            return stable_hash({"unimoe": self.preset, "init": "random", "seed": self.seed, "dtype": self.dtype})
        return stable_hash({"unimoe": weights_digest(self._checkpoint_dir()), "dtype": self.dtype})

    def fingerprint(self) -> str:
        return self._fingerprint

    def _checkpoint_dir(self) -> Path:
        if self.init not in ("checkpoint", "random"):
            raise ValueError(f"init must be 'checkpoint' or 'random', got {self.init!r}")
        hub = HUB_IDS.get(self.name, "the model's release")
        if not self.checkpoint:
            raise CheckpointMissing(f"model {self.name}: no checkpoint given. Download {hub} and pass "
                                    f"model.args.checkpoint=<that folder> (it must hold config.json and *.safetensors)")
        root = Path(self.checkpoint)
        if not root.is_absolute() and not root.exists():
            root = Path(__file__).resolve().parents[2] / root  # bundled weights, relative to the repository
        if not (root / "config.json").is_file():
            raise CheckpointMissing(f"model {self.name}: {root} holds no config.json. Download {hub} into {root} "
                                    f"(config.json plus the sharded *.safetensors) or point checkpoint= at it")
        return root

    # ---- lazy construction
    def _load(self) -> None:
        import torch

        from unimoe.config import UniMoEConfig
        from unimoe.omni import UniMoEOmni
        from unimoe.processor import Processor
        from unimoe.tokenizer import load_tokenizer

        dtype = getattr(torch, self.dtype)
        if self.init == "random":
            torch.manual_seed(self.seed)
            config = UniMoEConfig.preset(self.preset)
            model = UniMoEOmni(config).to(dtype)
            tokenizer = load_tokenizer()
        else:
            from unimoe.checkpoint import from_pretrained

            root = self._checkpoint_dir()
            model = from_pretrained(root, dtype=dtype, model_class=UniMoEOmni)
            config = model.config
            tokenizer = load_tokenizer(str(root))
        self._model = model.to(self.device).eval()
        self._processor = Processor.for_config(config, tokenizer)
        if self.system_prompt is not None:
            self._processor.system_prompt = self.system_prompt

    # ---- generation
    def _conversation(self, request: Request) -> list[dict[str, Any]]:
        from harness.media import load_audio, load_image, load_video_frames
        from unimoe.processor import Audio, Image, Video

        convo = []
        for message in request.messages:
            parts: list[Any] = []
            for part in message.content:
                if isinstance(part, TextPart):
                    parts.append(part.text)
                elif isinstance(part, ImagePart):
                    parts.append(Image(load_image(part.path)))
                elif isinstance(part, VideoPart):
                    frames, _ = load_video_frames(part.path, fps=part.fps, max_frames=part.max_frames,
                                                  start_time=part.start_time, end_time=part.end_time)
                    parts.append(Video(frames, fps=part.fps))
                elif isinstance(part, AudioPart):
                    parts.append(Audio(load_audio(part.path, start_time=part.start_time, end_time=part.end_time)))
            convo.append({"role": message.role, "content": parts})
        return convo

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        import torch

        from unimoe.probes import RoutingProbe
        from unimoe.tokenizer import SPECIAL_IDS

        if self._model is None:
            self._load()
        tokenizer = self._processor.tokenizer
        out = []
        for request in requests:
            gen = request.generation
            batch = self._processor([self._conversation(request)])
            probe = RoutingProbe.for_model(self._model.config)
            generator = torch.Generator().manual_seed(gen.seed if gen.seed is not None else self.seed)
            result = self._model.generate_batch(
                batch, probe=probe, max_new_tokens=gen.max_new_tokens,
                temperature=gen.temperature if gen.do_sample else 0.0, top_p=gen.top_p, generator=generator,
                eos_token_id=[SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]],
                stop_strings=tuple(gen.until), decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
            )
            out.append(Response(text=result.texts[0].strip(), stats={
                "routing": probe.counts(), "prompt_tokens": int(batch.attention_mask.sum()),
                "new_tokens": len(result.tokens[0]), "finish_reason": result.finish_reasons[0]}))
        return out
