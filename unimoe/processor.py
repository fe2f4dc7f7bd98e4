"""From chat messages with decoded media to model inputs (reference §2.2-2.5).

Media arrive decoded (PIL images or uint8 arrays, video frames ``[N, H, W, 3]`` with their sampling fps,
16 kHz float32 audio); reading files is the caller's job. The processor

- formats the Qwen chat template and turns ``<image>``/``<video>``/``<audio>`` parts into
  ``<|vision_start|><|image_pad|>...<|vision_end|>`` (video: ``<|video_pad|>``; audio:
  ``<|audio_start|><|audio_pad|>...<|audio_end|>``), each pad repeated once per media token;
- cuts images into any-resolution crops (best grid from the pinpoints, aspect kept, black padding,
  non-overlapping crops, no global thumbnail), videos into one crop per frame, audio into 30 s chunks of
  log-mel features;
- builds the Omni 3D position ids and a per-token modality id for the routing probes;
- left-pads a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np
import torch

from unimoe.encoders import AudioSpec, VisionSpec
from unimoe.probes import MODALITIES
from unimoe.rope import MediaTokens, build_position_ids
from unimoe.tokenizer import SPECIAL_IDS
from unimoe.whisper import log_mel, mel_filters

IMAGE_PAD, VIDEO_PAD, AUDIO_PAD = (SPECIAL_IDS[t] for t in ("<|image_pad|>", "<|video_pad|>", "<|audio_pad|>"))
DEFAULT_SYSTEM = "You are a helpful assistant."
NORMALIZATION = {"siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                 "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))}


@dataclass
class Image:
    pixels: Any  # PIL image or uint8 [H, W, 3]


@dataclass
class Video:
    frames: np.ndarray  # uint8 [N, H, W, 3], already sampled
    fps: float = 1.0  # sampling rate of ``frames``


@dataclass
class Audio:
    samples: np.ndarray  # float32 mono at 16 kHz


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T], left-padded
    attention_mask: torch.Tensor  # [B, T]
    position_ids: torch.Tensor  # [3, B, T]
    modality_ids: torch.Tensor  # [B, T], index into probes.MODALITIES
    pixel_values: torch.Tensor | None = None  # [crops, 3, S, S] of every image, in prompt order
    image_grid_thw: torch.Tensor | None = None  # [images, 3]
    video_pixels: torch.Tensor | None = None  # [frames, 3, S, S] of every video
    video_grid_thw: torch.Tensor | None = None  # [videos, 3]
    video_seconds_per_frame: torch.Tensor | None = None  # [videos]
    audio_features: torch.Tensor | None = None  # [chunks, mels, frames] of every audio
    audio_chunks: torch.Tensor | None = None  # [audios]
    extras: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor on ``device`` (the processor builds batches on the CPU)."""
        moved = {f.name: value.to(device) if isinstance(value := getattr(self, f.name), torch.Tensor) else value
                 for f in fields(self)}
        return Batch(**moved)


# ---------------------------------------------------------------------------------------------------------
# Images


def select_best_resolution(size: tuple[int, int], pinpoints: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """LLaVA any-res choice over (height, width) pinpoints: the most effective pixels, then the least waste."""
    h, w = size
    best, best_key = None, None
    for ch, cw in pinpoints:
        scale = min(cw / w, ch / h)
        effective = min(int(w * scale) * int(h * scale), w * h)
        key = (effective, -(cw * ch - effective))
        if best_key is None or key > best_key:
            best, best_key = (ch, cw), key
    return best


def to_crops(image: Any, spec: VisionSpec) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 crops ``[a*b, S, S, 3]`` (row-major over the a x b grid) and the grid (a, b)."""
    from PIL import Image as PILImage

    im = image if isinstance(image, PILImage.Image) else PILImage.fromarray(np.asarray(image, dtype=np.uint8))
    im = im.convert("RGB")
    target_h, target_w = select_best_resolution((im.height, im.width), spec.grid_pinpoints)
    scale = min(target_w / im.width, target_h / im.height)
    new_w, new_h = max(1, int(im.width * scale)), max(1, int(im.height * scale))
    canvas = PILImage.new("RGB", (target_w, target_h), (0, 0, 0))
    canvas.paste(im.resize((new_w, new_h), PILImage.Resampling.BICUBIC), ((target_w - new_w) // 2, (target_h - new_h) // 2))
    arr = np.asarray(canvas)
    s = spec.image_size
    a, b = target_h // s, target_w // s
    crops = [arr[i * s:(i + 1) * s, j * s:(j + 1) * s] for i in range(a) for j in range(b)]
    return np.stack(crops), (a, b)


def normalize(crops: np.ndarray, kind: str) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATION[kind])
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    return (x - mean) / std


def frame_crop(frame: np.ndarray, spec: VisionSpec) -> np.ndarray:
    """A video frame resized to one S x S crop (the paper: video frames are one 384 crop each)."""
    from PIL import Image as PILImage

    im = PILImage.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")
    return np.asarray(im.resize((spec.image_size, spec.image_size), PILImage.Resampling.BICUBIC))


# ---------------------------------------------------------------------------------------------------------
# Audio


def audio_chunks(samples: np.ndarray, spec: AudioSpec) -> list[np.ndarray]:
    """30 s pieces (the last one shorter), at most ``max_chunks``; an empty clip still gives one chunk."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    n = max(1, -(-len(samples) // spec.chunk_samples))
    return [samples[i * spec.chunk_samples:(i + 1) * spec.chunk_samples] for i in range(min(n, spec.max_chunks))]


class Processor:
    def __init__(self, tokenizer: Any, vision: VisionSpec, audio: AudioSpec, system_prompt: str | None = DEFAULT_SYSTEM):
        self.tokenizer = tokenizer
        self.vision = vision
        self.audio = audio
        self.system_prompt = system_prompt
        self.media_tokens = MediaTokens(IMAGE_PAD, VIDEO_PAD, AUDIO_PAD, spatial_pool=vision.spatial_pool,
                                        audio_tokens_per_chunk=audio.query_tokens)
        self._mel_filters: torch.Tensor | None = None

    @classmethod
    def for_config(cls, config: Any, tokenizer: Any) -> "Processor":
        return cls(tokenizer, VisionSpec.from_config(config.vision_config), AudioSpec.from_config(config.audio_config))

    @property
    def tokens_per_crop(self) -> int:
        return self.vision.spatial_pool**2

    def mel(self, chunk: np.ndarray) -> np.ndarray:
        """Whisper log-mel features ``[mels, frames]`` of one chunk (zero-padded to the chunk length)."""
        if self._mel_filters is None:
            self._mel_filters = mel_filters(self.audio.num_mel_bins)
        samples = torch.from_numpy(np.asarray(chunk, dtype=np.float32))
        return log_mel(samples, self._mel_filters, self.audio.chunk_samples).numpy()

    # ---- one conversation
    def encode(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> dict[str, Any]:
        """Token ids, modality ids and media tensors of one conversation.

        ``messages``: ``[{"role": "user", "content": [str | Image | Video | Audio, ...]}, ...]``.
        """
        ids: list[int] = []
        modality: list[int] = []
        media: dict[str, list] = {"crops": [], "grids": [], "frames": [], "video_grids": [], "spf": [], "mels": [],
                                  "chunks": []}

        def text(s: str) -> None:
            toks = self.tokenizer.encode(s, add_special_tokens=False)
            ids.extend(toks)
            modality.extend([MODALITIES.index("text")] * len(toks))

        def block(start: str, pad: int, n: int, end: str, kind: str) -> None:
            text(start)
            ids.extend([pad] * n)
            modality.extend([MODALITIES.index(kind)] * n)
            text(end)

        convo = list(messages)
        if self.system_prompt and not any(m["role"] == "system" for m in convo):
            convo.insert(0, {"role": "system", "content": [self.system_prompt]})
        for message in convo:
            text(f"<|im_start|>{message['role']}\n")
            for part in message["content"]:
                if isinstance(part, str):
                    text(part)
                elif isinstance(part, Image):
                    crops, (a, b) = to_crops(part.pixels, self.vision)
                    media["crops"].append(crops)
                    media["grids"].append((1, a, b))
                    block("<|vision_start|>", IMAGE_PAD, a * b * self.tokens_per_crop, "<|vision_end|>", "image")
                elif isinstance(part, Video):
                    frames = np.stack([frame_crop(f, self.vision) for f in part.frames])
                    media["frames"].append(frames)
                    media["video_grids"].append((len(frames), 1, 1))
                    media["spf"].append(1.0 / part.fps)
                    block("<|vision_start|>", VIDEO_PAD, len(frames) * self.tokens_per_crop, "<|vision_end|>", "video")
                elif isinstance(part, Audio):
                    chunks = audio_chunks(part.samples, self.audio)
                    media["mels"].extend(self.mel(c) for c in chunks)
                    media["chunks"].append(len(chunks))
                    block("<|audio_start|>", AUDIO_PAD, len(chunks) * self.audio.query_tokens, "<|audio_end|>", "audio")
                else:
                    raise TypeError(f"unsupported message part {type(part).__name__}")
            text("<|im_end|>\n")
        if add_generation_prompt:
            text("<|im_start|>assistant\n")
        return {"ids": ids, "modality": modality, **media}

    # ---- a batch
    def __call__(self, conversations: Sequence[Sequence[dict[str, Any]]]) -> Batch:
        return self.collate([self.encode(c) for c in conversations])

    def collate(self, encoded: Sequence[dict[str, Any]]) -> Batch:
        """Left-pad encoded conversations into a batch; rows with ``labels`` get ``extras["labels"]``."""
        length = max(len(e["ids"]) for e in encoded)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), length), dtype=torch.long)
        modality = torch.zeros((len(encoded), length), dtype=torch.long)
        for row, e in enumerate(encoded):  # left padding
            n = len(e["ids"])
            input_ids[row, length - n:] = torch.tensor(e["ids"])
            mask[row, length - n:] = 1
            modality[row, length - n:] = torch.tensor(e["modality"])

        def cat(key: str):
            items = [x for e in encoded for x in e[key]]
            return items or None

        grids, video_grids = cat("grids"), cat("video_grids")
        batch = Batch(
            input_ids=input_ids, attention_mask=mask, position_ids=torch.empty(0), modality_ids=modality,
            pixel_values=normalize(np.concatenate(cat("crops")), self.vision.kind) if grids else None,
            image_grid_thw=torch.tensor(grids) if grids else None,
            video_pixels=normalize(np.concatenate(cat("frames")), self.vision.kind) if video_grids else None,
            video_grid_thw=torch.tensor(video_grids) if video_grids else None,
            video_seconds_per_frame=torch.tensor(cat("spf"), dtype=torch.float32) if video_grids else None,
            audio_features=torch.from_numpy(np.stack(cat("mels"))) if cat("mels") else None,
            audio_chunks=torch.tensor(cat("chunks")) if cat("chunks") else None,
        )
        if any("labels" in e for e in encoded):
            labels = torch.full((len(encoded), length), -100, dtype=torch.long)
            for row, e in enumerate(encoded):
                if "labels" in e:
                    labels[row, length - len(e["labels"]):] = torch.tensor(e["labels"])
            batch.extras["labels"] = labels
        batch.position_ids = build_position_ids(
            input_ids, self.media_tokens, image_grid_thw=batch.image_grid_thw, video_grid_thw=batch.video_grid_thw,
            audio_chunks=batch.audio_chunks, video_seconds_per_frame=batch.video_seconds_per_frame,
            attention_mask=mask,
        )
        return batch
