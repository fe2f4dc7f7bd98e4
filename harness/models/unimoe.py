"""The bridge from the harness to :mod:`unimoe`: typed requests in, text plus routing statistics out.

Media are decoded here (``harness.media``) at the request's fps and frame cap (a video asked with
``use_audio`` brings its soundtrack, right after its frames); the processor and the model come from
``unimoe``. ``layout`` says where media go in the prompt: ``inline`` keeps the request's order (what
unimoe_tiny was trained on); ``lmms_eval`` is the released Uni-MoE-2 evaluation wrapper's prompt, which the
paper's numbers come from: the first image, the first audio and the first video of a user turn (a video's
soundtrack counting as an audio), each as its placeholder on its own line in that order, then the turn's text
with any ``<image>`` tag removed; further media of a kind are dropped, as there. ``stop_strings: false``
ignores the task's stop strings, as that wrapper does. Every response carries the sample's routing counts per modality and layer
(``stats["routing"]``, additive, see :mod:`harness.routing_report`). Requests run one at a time, as the
released evaluation wrapper does, so that the statistics are the sample's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from harness.api import AudioPart, ImagePart, Request, Response, TextPart, VideoPart, stable_hash

HUB_IDS = {"unimoe2_omni": "HIT-TMG/Uni-MoE-2.0-Omni", "unimoe_8e": "HIT-TMG/Uni-MoE (Uni_MoE_8e checkpoint)"}


LAYOUTS = ("inline", "lmms_eval")


def bundled(path: str) -> Path:
    """A weights folder as given, or, when it is relative and absent here, relative to the repository."""
    root = Path(path)
    return Path(__file__).resolve().parents[2] / root if not root.is_absolute() and not root.exists() else root


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
                 seed: int = 0, dtype: str = "float32", device: str = "cpu", system_prompt: str | None = None,
                 layout: str = "inline", stop_strings: bool = True, imagegen: str | None = None,
                 imagegen_init: str = "checkpoint"):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.name = name
        self.checkpoint = checkpoint
        self.preset = preset
        self.init = init
        self.seed = seed
        self.dtype = dtype
        self.device = device
        self.system_prompt = system_prompt
        self.layout = layout
        self.stop_strings = stop_strings
        self.imagegen = imagegen
        self.imagegen_init = imagegen_init
        self._image_generator = None
        self._model = None
        self._processor = None
        self._fingerprint = self._compute_fingerprint()

    # ---- identity
    def _compute_fingerprint(self) -> str:
        # the prompt set-up is part of the identity (cached answers of one layout must not serve another);
        # left out at its default so that existing fingerprints and caches stay valid
        prompt = {} if (self.layout, self.stop_strings) == ("inline", True) else {
            "layout": self.layout, "stop_strings": self.stop_strings}
        prompt |= self._imagegen_identity()
        if self.init == "random":
            return stable_hash({"unimoe": self.preset, "init": "random", "seed": self.seed, "dtype": self.dtype,
                                **prompt})
        return stable_hash({"unimoe": weights_digest(self._checkpoint_dir()), "dtype": self.dtype, **prompt})

    def _imagegen_identity(self) -> dict[str, Any]:
        """The image head's part of the identity (absent without one, so text-only fingerprints stay as they were)."""
        if not self.imagegen:
            return {}
        if self.imagegen_init not in ("checkpoint", "random"):
            raise ValueError(f"imagegen_init must be 'checkpoint' or 'random', got {self.imagegen_init!r}")
        folder = self._imagegen_dir()
        digest = hashlib.sha256((folder / "config.json").read_bytes())
        if self.imagegen_init == "checkpoint":
            digest.update((folder / "model.safetensors").read_bytes())
        return {"imagegen": digest.hexdigest(), "imagegen_init": self.imagegen_init}

    def _imagegen_dir(self) -> Path:
        root = bundled(self.imagegen)
        if not (root / "config.json").is_file():
            raise CheckpointMissing(f"model {self.name}: image generator folder {root} holds no config.json "
                                    f"(train one with `python -m unimoe.train.imagegen --out {root}`)")
        return root

    def fingerprint(self) -> str:
        return self._fingerprint

    def _checkpoint_dir(self) -> Path:
        if self.init not in ("checkpoint", "random"):
            raise ValueError(f"init must be 'checkpoint' or 'random', got {self.init!r}")
        hub = HUB_IDS.get(self.name, "the model's release")
        if not self.checkpoint:
            raise CheckpointMissing(f"model {self.name}: no checkpoint given. Download {hub} and pass "
                                    f"model.args.checkpoint=<that folder> (it must hold config.json and *.safetensors)")
        root = bundled(self.checkpoint)
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
        convo = []
        for message in request.messages:
            parts = [decoded for part in message.content for decoded in self._decode(part)]
            if self.layout == "lmms_eval" and message.role == "user":
                parts = _lmms_eval_turn(parts)
            convo.append({"role": message.role, "content": parts})
        return convo

    @staticmethod
    def _decode(part: Any) -> list[Any]:
        """The processor's parts for one request part; a video with ``use_audio`` and a soundtrack yields its
        frames and then that soundtrack (a silent video yields frames only, as in the released wrapper)."""
        from harness.media import has_audio_stream, load_audio, load_image, load_video_audio, load_video_frames
        from unimoe.processor import Audio, Image, Video

        if isinstance(part, TextPart):
            return [part.text]
        if isinstance(part, ImagePart):
            return [Image(load_image(part.path))]
        if isinstance(part, AudioPart):
            return [Audio(load_audio(part.path, start_time=part.start_time, end_time=part.end_time))]
        if isinstance(part, VideoPart):
            frames, _ = load_video_frames(part.path, fps=part.fps, max_frames=part.max_frames,
                                          start_time=part.start_time, end_time=part.end_time)
            decoded: list[Any] = [Video(frames, fps=part.fps)]
            if part.use_audio and has_audio_stream(part.path):
                decoded.append(Audio(load_video_audio(part.path, start_time=part.start_time, end_time=part.end_time)))
            return decoded
        raise TypeError(f"unsupported message part {type(part).__name__}")

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        import torch

        from unimoe.probes import RoutingProbe
        from unimoe.tokenizer import SPECIAL_IDS

        if self._model is None:
            self._load()
        tokenizer = self._processor.tokenizer
        out = []
        for request in requests:
            if request.output == "image":
                out.append(self._generate_image(request))
                continue
            gen = request.generation
            batch = self._processor([self._conversation(request)])
            probe = RoutingProbe.for_model(self._model.config)
            generator = torch.Generator().manual_seed(gen.seed if gen.seed is not None else self.seed)
            result = self._model.generate_batch(
                batch, probe=probe, max_new_tokens=gen.max_new_tokens,
                temperature=gen.temperature if gen.do_sample else 0.0, top_p=gen.top_p, generator=generator,
                eos_token_id=[SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]],
                stop_strings=tuple(gen.until) if self.stop_strings else (), decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
            )
            out.append(Response(text=result.texts[0].strip(), stats={
                "routing": probe.counts(), "prompt_tokens": int(batch.attention_mask.sum()),
                "new_tokens": len(result.tokens[0]), "finish_reason": result.finish_reasons[0]}))
        return out

    # ---- image output
    def _load_image_generator(self):
        import torch

        from unimoe.imagegen.generator import CONFIG_FILE, ImageGenConfig, ImageGenerator

        if not self.imagegen:
            raise ValueError(f"model {self.name} has no image generator: image-output tasks need "
                             f"model.args.imagegen=<folder with config.json and model.safetensors>")
        folder = self._imagegen_dir()
        if self.imagegen_init == "random":  # the untrained head: same architecture, seeded random weights
            import json

            torch.manual_seed(self.seed)
            config = ImageGenConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
            return ImageGenerator(config).to(getattr(torch, self.dtype)).eval()
        return ImageGenerator.load(folder, dtype=getattr(torch, self.dtype))

    def _generate_image(self, request: Request) -> Response:
        """The released image path: answer spans -> projectors -> DiT; the first input image is the source."""
        import io

        from PIL import Image

        from harness.media import load_image, stored_bytes
        from unimoe.imagegen.generator import to_unit
        from unimoe.imagegen.trigger import generate_visualgen
        from unimoe.tokenizer import SPECIAL_IDS

        if self._image_generator is None:
            self._image_generator = self._load_image_generator()
        head = self._image_generator
        gen = request.generation
        spans = generate_visualgen(self._model, self._processor, self._conversation(request),
                                   max_new_tokens=head.config.answer_tokens,
                                   eos_token_id=[SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]])
        images = [p for p in request.media() if isinstance(p, ImagePart)]
        source = to_unit(load_image(images[0].path), head.config.image_size) if images else None
        pixels = head.generate_image(spans, source, seed=gen.seed if gen.seed is not None else self.seed)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return Response(text=spans.text, image=str(stored_bytes(buffer.getvalue(), ".png")),
                        stats={"spans": "forced" if spans.forced else "generated"})

    def routing_trace(self, request: Request, response_text: str) -> dict[str, Any]:
        """Every token's routing for one sample: the prompt and the given answer, teacher-forced in one pass.

        Returns ``{"tokens": [[text, modality], ...], "expert_ids": [layer][token][slot],
        "expert_weights": [layer][token][slot]}`` (unused slots carry -1); reports draw it per layer.
        """
        import torch

        from unimoe.probes import MODALITIES, TEXT, RoutingProbe

        if self._model is None:
            self._load()
        tokenizer = self._processor.tokenizer
        encoded = self._processor.encode(self._conversation(request))
        answer = tokenizer.encode(response_text, add_special_tokens=False)
        encoded["ids"] = encoded["ids"] + answer
        encoded["modality"] = encoded["modality"] + [TEXT] * len(answer)
        batch = self._processor.collate([encoded])
        probe = RoutingProbe.for_model(self._model.config, keep_tokens=True)
        with torch.inference_mode():
            self._model.forward_batch(batch, probe=probe)
        layers = sorted(probe.token_records, key=lambda r: int(r["layer"]))
        tokens = [[tokenizer.decode([i]) if m == TEXT else "", MODALITIES[m]]
                  for i, m in zip(encoded["ids"], encoded["modality"])]
        return {"tokens": tokens, "expert_ids": [r["expert_ids"].tolist() for r in layers],
                "expert_weights": [r["expert_weights"].tolist() for r in layers]}


def _lmms_eval_turn(parts: list[Any]) -> list[Any]:
    """A user turn as the released evaluation wrapper lays it out (see the module docstring)."""
    from unimoe.processor import Audio, Image, Video

    text = "".join(p for p in parts if isinstance(p, str)).replace("<image>", "")
    media = [next((p for p in parts if isinstance(p, kind)), None) for kind in (Image, Audio, Video)]
    return [item for m in media if m is not None for item in (m, "\n")] + [text]
