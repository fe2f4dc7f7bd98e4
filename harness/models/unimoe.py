"""The bridge from the harness to :mod:`unimoe`: typed requests in, text plus routing statistics out.

Media are decoded here (``harness.media``) at the request's fps and frame cap (a video asked with
``use_audio`` brings its soundtrack, right after its frames); the processor and the model come from
``unimoe``. ``layout`` says where media go in the prompt: ``inline`` keeps the request's order (what
unimoe_tiny was trained on); ``lmms_eval`` is the released Uni-MoE-2 evaluation wrapper's prompt, which the
paper's numbers come from: the first image, the first audio and the first video of a user turn (a video's
soundtrack counting as an audio), each as its placeholder on its own line in that order, then the turn's text
with any ``<image>`` tag removed; further media of a kind are dropped, as there. ``stop_strings: false``
ignores the task's stop strings, as that wrapper does. Every response carries the sample's routing counts per modality and layer
(``stats["routing"]``, additive, see :mod:`harness.routing_report`), its own also when greedy requests run
as one padded batch (one probe per row).

Speech output (``request.output == "audio"``) goes through the speech head of ``tts_checkpoint`` (MoE-TTS and
WavTokenizer, :mod:`unimoe.tts`): with ``speech_from: request`` (the default, the released TTS evaluation) the
request's text is spoken in the voice ``voice``; with ``speech_from: model`` the language model answers and the
``<|speech_start|>`` voice ``<|speech_prompt|>`` text ``<|speech_end|>`` spans it writes are spoken, as released.
Output that cannot become speech (no span, a span without text, codes that decode to silence) is an error on
that sample. ``tts_init: random`` gives the same speech head untrained (seeded), the baseline of its training.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from harness.api import (
    AudioPart,
    ImagePart,
    LoglikelihoodRequest,
    Request,
    Response,
    TextPart,
    VideoPart,
    stable_hash,
)
from harness.models import likelihood
from harness.models.weights import folder_digest, update_with_files

HUB_IDS = {"unimoe2_omni": "HIT-TMG/Uni-MoE-2.0-Omni", "unimoe_8e": "HIT-TMG/Uni-MoE (Uni_MoE_8e checkpoint)"}


LAYOUTS = ("inline", "lmms_eval")
SPEECH_SOURCES = ("request", "model")


def bundled(path: str) -> Path:
    """A weights folder as given, or, when it is relative and absent here, relative to the repository."""
    root = Path(path)
    return Path(__file__).resolve().parents[2] / root if not root.is_absolute() and not root.exists() else root


class CheckpointMissing(FileNotFoundError):
    pass


class UniMoEAdapter:
    prefetch_media = True  # decodes through harness.media's loaders, so a prefetcher can decode ahead of it

    def __init__(self, name: str, checkpoint: str | None = None, preset: str = "tiny_omni", init: str = "checkpoint",
                 seed: int = 0, dtype: str = "float32", device: str = "cpu", system_prompt: str | None = None,
                 layout: str = "inline", stop_strings: bool = True, tts_checkpoint: str | None = None,
                 tts_init: str = "checkpoint", tts_preset: str = "tiny", voice: str = "",
                 speech_from: str = "request", imagegen: str | None = None, imagegen_init: str = "checkpoint",
                 decode: str = "eager"):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if speech_from not in SPEECH_SOURCES:
            raise ValueError(f"speech_from must be one of {SPEECH_SOURCES}, got {speech_from!r}")
        from unimoe.decode import DECODE_MODES

        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, got {decode!r}")
        if tts_init not in ("checkpoint", "random"):
            raise ValueError(f"tts_init must be 'checkpoint' or 'random', got {tts_init!r}")
        self.tts_checkpoint = tts_checkpoint
        self.tts_init = tts_init
        self.tts_preset = tts_preset
        self.voice = voice
        self.speech_from = speech_from
        self._speaker = None
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
        self.decode = decode  # not part of the identity: every mode gives the eager tokens
        self._step = None
        self._model = None
        self._processor = None
        self._fingerprint = self._compute_fingerprint()

    # ---- identity
    def _compute_fingerprint(self) -> str:
        # the prompt set-up is part of the identity (cached answers of one layout must not serve another);
        # left out at its default so that existing fingerprints and caches stay valid
        prompt = {} if (self.layout, self.stop_strings) == ("inline", True) else {
            "layout": self.layout, "stop_strings": self.stop_strings}
        prompt |= self._speech_identity()
        prompt |= self._imagegen_identity()
        if self.init == "random":
            return stable_hash({"unimoe": self.preset, "init": "random", "seed": self.seed, "dtype": self.dtype,
                                **prompt})
        return stable_hash({"unimoe": folder_digest(self._checkpoint_dir()), "dtype": self.dtype, **prompt})

    def _speech_identity(self) -> dict[str, Any]:
        """The speech head's part of the fingerprint; empty without one (text-only caches stay valid)."""
        speech = {"voice": self.voice, "speech_from": self.speech_from}
        if self.tts_init == "random":
            return {"speech": {"init": "random", "preset": self.tts_preset, "seed": self.seed, **speech}}
        if not self.tts_checkpoint:
            return {}
        root = self._tts_dir()
        digest = hashlib.sha256()
        update_with_files(digest, sorted(p for p in root.iterdir() if p.is_file()))  # config, generator, codec
        return {"speech": {"weights": digest.hexdigest(), **speech}}

    def _tts_dir(self) -> Path:
        root = bundled(self.tts_checkpoint)
        if not root.is_dir():
            raise CheckpointMissing(f"model {self.name}: speech head folder {root} does not exist (train it with "
                                    f"`python -m unimoe.train.tts` or point tts_checkpoint= at one)")
        return root

    def _imagegen_identity(self) -> dict[str, Any]:
        """The image head's part of the identity (absent without one, so text-only fingerprints stay as they were)."""
        if not self.imagegen:
            return {}
        if self.imagegen_init not in ("checkpoint", "random"):
            raise ValueError(f"imagegen_init must be 'checkpoint' or 'random', got {self.imagegen_init!r}")
        folder = self._imagegen_dir()
        digest = (folder_digest(folder) if self.imagegen_init == "checkpoint"  # config and weights, as the LM's
                  else hashlib.sha256((folder / "config.json").read_bytes()).hexdigest())  # untrained: config only
        return {"imagegen": digest, "imagegen_init": self.imagegen_init}

    def _imagegen_dir(self) -> Path:
        root = bundled(self.imagegen)
        if not (root / "config.json").is_file():
            raise CheckpointMissing(f"model {self.name}: image generator folder {root} holds no config.json "
                                    f"(train one with `python -m unimoe.train.imagegen --out {root}`)")
        return root

    def fingerprint(self) -> str:
        return self._fingerprint

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, bool]]:
        """lm-eval's ``loglikelihood`` on raw text (no chat template), as a plain forward pass computes it."""
        from unimoe.tokenizer import SPECIAL_IDS

        if self._model is None:
            self._load()
        model, tokenizer = self._model, self._processor.tokenizer

        def forward(ids, mask, keep):
            return model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits

        return likelihood.score(forward, lambda s: tokenizer.encode(s, add_special_tokens=False), requests,
                                prefix_id=SPECIAL_IDS["<|endoftext|>"], pad_id=SPECIAL_IDS["<|endoftext|>"])

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

    # ---- construction
    def load(self) -> None:
        """Build the model now (the runner calls this before the first sample, so a broken checkpoint fails
        the run once); ``generate`` builds it on first use otherwise."""
        if self._model is None:
            self._load()

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
        self._step = self._decode_step()
        self._processor = Processor.for_config(config, tokenizer)
        if self.system_prompt is not None:
            self._processor.system_prompt = self.system_prompt

    def _decode_step(self):
        """The fixed-shape decode step ``decode`` names (:mod:`unimoe.decode`), kept for the adapter's life so that
        its cache and compiled graphs serve every batch of the same size; None for the eager path."""
        from unimoe.decode import decode_step

        if self.decode != "eager" and self._model.config.moe_type != "dynamic":
            raise ValueError(f"model {self.name}: model.args.decode={self.decode} needs Uni-MoE-2 routing (dynamic "
                             f"MoE); this checkpoint is {self._model.config.moe_type!r}: use decode=eager")
        return decode_step(self._model, self.decode)

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
        from harness.media import (
            has_audio_stream,
            load_audio,
            load_image,
            load_video_audio,
            load_video_frames,
        )
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
        """Greedy requests with the same decoding settings run as one padded batch (``harness serve`` batches
        concurrent clients, ``batch_size`` batches a run), each row with its own routing probe; sampled
        requests run one at a time so that each draws from its own seed."""
        if self._model is None:
            self._load()
        out: list[Response | None] = [None] * len(requests)
        groups: dict[Any, list[int]] = {}
        for i, request in enumerate(requests):
            if request.output == "audio" and self.speech_from == "request":
                out[i] = self._speak(request, self._span_ids(request.text()))
                continue
            if request.output == "image":
                out[i] = self._generate_image(request)
                continue
            gen = request.generation
            groups.setdefault(("one", i) if gen.do_sample else ("greedy", gen), []).append(i)
        for rows in groups.values():
            for i, response in zip(rows, self._generate_rows([requests[i] for i in rows])):
                out[i] = response
        return out  # type: ignore[return-value]

    def _generate_rows(self, requests: Sequence[Request]) -> list[Response]:
        """One forward batch of requests that share their decoding settings; speech-output rows then speak the
        spans the model wrote."""
        import torch

        from unimoe.tokenizer import SPECIAL_IDS

        tokenizer = self._processor.tokenizer
        gen = requests[0].generation
        batch = self._processor([self._conversation(r) for r in requests])
        probe = RowProbes(self._model.config, len(requests))
        generator = torch.Generator().manual_seed(gen.seed if gen.seed is not None else self.seed)
        result = self._model.generate_batch(
            batch, probe=probe, max_new_tokens=gen.max_new_tokens,
            temperature=gen.temperature if gen.do_sample else 0.0, top_p=gen.top_p, generator=generator,
            eos_token_id=[SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]],
            stop_strings=tuple(gen.until) if self.stop_strings else (), decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
            step=self._step,
        )
        responses = []
        for b, request in enumerate(requests):
            stats = {"routing": probe.rows[b].counts(), "prompt_tokens": int(batch.attention_mask[b].sum()),
                     "new_tokens": len(result.tokens[b]), "finish_reason": result.finish_reasons[b]}
            if request.output == "audio":
                spoken = self._speak(request, [int(t) for t in result.tokens[b]])
                spoken.text, spoken.stats = result.texts[b].strip(), {**stats, **spoken.stats}
                responses.append(spoken)
                continue
            responses.append(Response(text=result.texts[b].strip(), stats=stats))
        return responses

    # ---- speech output
    def _span_ids(self, text: str) -> list[int]:
        """The span the released TTS evaluation speaks: voice prompt and text between the speech tokens."""
        from unimoe.tokenizer import SPECIAL_IDS

        encode = lambda t: self._processor.tokenizer.encode(t, add_special_tokens=False)
        return [SPECIAL_IDS["<|speech_start|>"], *encode(self.voice), SPECIAL_IDS["<|speech_prompt|>"],
                *encode(text.strip()), SPECIAL_IDS["<|speech_end|>"]]

    def _load_speaker(self):
        import torch

        from unimoe.tokenizer import SPECIAL_IDS
        from unimoe.tts import moe_tts, wavtokenizer
        from unimoe.tts.checkpoint import load_speech_head
        from unimoe.tts.segmenter import SpeechTokens
        from unimoe.tts.speaker import Speaker

        if self.tts_init == "random":
            torch.manual_seed(self.seed)
            generator = moe_tts.MoETTS(moe_tts.preset(self.tts_preset)).eval()
            codec = wavtokenizer.WavTokenizer(wavtokenizer.preset(self.tts_preset)).eval()
        elif not self.tts_checkpoint:
            raise CheckpointMissing(f"model {self.name}: no speech head; pass model.args.tts_checkpoint=<folder>")
        else:
            generator, codec = load_speech_head(self._tts_dir())
        tokens = SpeechTokens.for_tokenizer(self._processor.tokenizer, SPECIAL_IDS["<|speech_start|>"],
                                            SPECIAL_IDS["<|speech_prompt|>"], SPECIAL_IDS["<|speech_end|>"])
        ignore = (SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"])
        return Speaker(generator.to(self.device), codec.to(self.device), tokens, ignore)

    def _speak(self, request: Request, ids: list[int]) -> Response:
        """One sample's speech as a cached 16-bit WAV, or the one-line reason why there is none."""
        import io

        import soundfile as sf

        from harness.media import stored_bytes
        from unimoe.tts.checkpoint import SpeechCheckpointError

        if self._speaker is None:
            try:
                self._speaker = self._load_speaker()
            except (CheckpointMissing, SpeechCheckpointError) as e:
                return Response(error=f"sample {request.doc_id}: {e}")
        speech = self._speaker.speak_ids(ids, max_codes=request.generation.max_new_tokens)
        stats = {"speech_segments": len(speech.codes), "speech_codes": sum(len(c) for c in speech.codes)}
        if speech.problem:
            return Response(error=f"sample {request.doc_id}: no speech: {speech.problem}", stats=stats)
        buffer = io.BytesIO()
        sf.write(buffer, speech.waveform.numpy(), speech.sample_rate, format="WAV", subtype="PCM_16")
        return Response(audio=str(stored_bytes(buffer.getvalue(), ".wav")), stats=stats)

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


class RowProbes:
    """One routing probe per batch row, so that a sample's statistics are its own in a batched forward: each
    row's probe sees only that row's tokens, and its load-balancing loss is weighted over that row alone."""

    def __init__(self, config: Any, rows: int):
        from unimoe.probes import RoutingProbe

        self.rows = [RoutingProbe.for_model(config) for _ in range(rows)]

    def record(self, layer: int, routing: Any, modality_ids: Any, token_mask: Any = None) -> None:
        import dataclasses

        import torch

        ids = routing.expert_ids
        row_of = torch.arange(ids.shape[0], device=ids.device)[:, None].expand(ids.shape[:2])
        for b, probe in enumerate(self.rows):
            keep = row_of == b
            if token_mask is not None:
                keep = keep & token_mask.reshape(keep.shape).bool().to(keep.device)
            if not bool(keep.any()):  # a finished row stepping on as padding: as if it had stopped
                continue
            row = routing
            if getattr(routing, "aux_weights", None) is not None:
                row = dataclasses.replace(routing, aux_weights=routing.aux_weights * keep.reshape(-1).to(
                    routing.aux_weights.dtype))
            probe.record(layer, row, modality_ids, keep)

    def add_step_counts(self, counts: Any) -> None:
        """What the static decode step counted on the device, each row to its own probe."""
        for b, probe in enumerate(self.rows):
            probe.add_step_counts(counts, b)


def _lmms_eval_turn(parts: list[Any]) -> list[Any]:
    """A user turn as the released evaluation wrapper lays it out (see the module docstring)."""
    from unimoe.processor import Audio, Image, Video

    text = "".join(p for p in parts if isinstance(p, str)).replace("<image>", "")
    media = [next((p for p in parts if isinstance(p, kind)), None) for kind in (Image, Audio, Video)]
    return [item for m in media if m is not None for item in (m, "\n")] + [text]
