"""Rotary position embeddings: plain 1-D RoPE, Qwen2-VL multimodal RoPE (M-RoPE), and the Uni-MoE-2.0
"Omni 3D" position-id layout for text, image crops, video frames and audio chunks.

M-RoPE gives every token three position components (temporal, height, width). The ``head_dim // 2``
rotary frequency pairs are cut into ``mrope_section`` bands and band ``i`` rotates with component ``i % 3``.
Text tokens have t = h = w, so for text M-RoPE is exactly 1-D RoPE.

The position-id layout (:func:`build_position_ids`) follows Uni-MoE-2.0's ``get_rope_index_new``
(facts from the architecture report §2.4; see the function docstring for the rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Uni-MoE-2.0 time scale: 2 position steps per second of media, as in Qwen2.5-VL (report §2.4).
TOKENS_PER_SECOND = 2.0
# Audio: a 30 s Whisper chunk is read as 10 groups of 3 s; all tokens of one group share one id.
AUDIO_GROUPS_PER_CHUNK = 10
AUDIO_SECONDS_PER_GROUP = 3.0


class RotaryEmbedding(nn.Module):
    """Produces ``cos``/``sin`` tables ``[B, 1, T, head_dim]`` for 1-D ``[B, T]`` or 3-D ``[3, B, T]`` position ids.

    With ``mrope_section`` set, frequency pair ``f`` takes its angle from the position component that owns
    its band; without it every pair uses the (single) component, i.e. ordinary RoPE.
    """

    def __init__(self, head_dim: int, theta: float = 10000.0, mrope_section: list[int] | None = None):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary head_dim must be even, got {head_dim}")
        half = head_dim // 2
        # fp32 arithmetic exactly as the reference implementations, so that angles match bit for bit; computed
        # on the CPU even while a model is built on the meta device (the tables are never stored in checkpoints)
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float, device="cpu") / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        if mrope_section is not None:
            if sum(mrope_section) != half:
                raise ValueError(f"mrope_section {mrope_section} must sum to head_dim // 2 = {half}")
            component = torch.cat(
                [torch.full((n,), i % 3, dtype=torch.long, device="cpu") for i, n in enumerate(mrope_section)]
            )
            self.register_buffer("freq_component", component, persistent=False)
        else:
            self.freq_component = None

    @classmethod
    def for_config(cls, config) -> RotaryEmbedding:
        """From Qwen-style config fields: ``head_dim``, ``rope_theta``, ``rope_scaling["mrope_section"]``."""
        section = (config.rope_scaling or {}).get("mrope_section")
        return cls(config.head_dim, config.rope_theta, list(section) if section else None)

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if position_ids.dim() == 3:
            if self.freq_component is None:
                if not torch.equal(position_ids[0], position_ids[1]) or not torch.equal(position_ids[0], position_ids[2]):
                    raise ValueError("3-D position ids need a config with rope_scaling.mrope_section")
                positions = position_ids[0]
                angles = positions[..., None].float() * self.inv_freq
            else:
                # [half, B, T]: each frequency pair reads its own component, then scales by its frequency.
                positions = position_ids[self.freq_component].float()
                angles = (positions * self.inv_freq[:, None, None]).permute(1, 2, 0)
        elif position_ids.dim() == 2:
            angles = position_ids[..., None].float() * self.inv_freq
        else:
            raise ValueError(f"position_ids must be [B, T] or [3, B, T], got shape {tuple(position_ids.shape)}")
        emb = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, T, D]: broadcasts over heads
        return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, H, T, D]`` by tables ``[B, 1, T, D]`` (the half-split layout of Llama/Qwen checkpoints)."""
    return x * cos + rotate_half(x) * sin


# ------------------------------------------------------------------------------------------------------
# Omni 3D position ids


@dataclass(frozen=True)
class MediaTokens:
    """What the position-id builder needs to know about the prompt's placeholder tokens.

    ``spatial_pool`` is ``vision_spatial_pool_stride`` (s): every image/video crop becomes s x s tokens.
    ``audio_tokens_per_chunk`` is ``whisper_query_tokens_size`` (200 in Uni-MoE-2.0), read as
    ``AUDIO_GROUPS_PER_CHUNK`` groups that share one id each.
    """

    image_token_id: int
    video_token_id: int
    audio_token_id: int
    spatial_pool: int
    audio_tokens_per_chunk: int = 200

    def __post_init__(self) -> None:
        if self.spatial_pool < 1:
            raise ValueError(f"spatial_pool must be >= 1, got {self.spatial_pool}")
        if self.audio_tokens_per_chunk % AUDIO_GROUPS_PER_CHUNK:
            raise ValueError(
                f"audio_tokens_per_chunk={self.audio_tokens_per_chunk} is not a multiple of "
                f"{AUDIO_GROUPS_PER_CHUNK} groups per 30 s chunk"
            )


def build_position_ids(
    input_ids: torch.Tensor,
    media: MediaTokens,
    image_grid_thw: torch.Tensor | None = None,
    video_grid_thw: torch.Tensor | None = None,
    audio_chunks: torch.Tensor | None = None,
    video_seconds_per_frame: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Uni-MoE-2.0 position ids ``LongTensor[3, B, T]`` (t, h, w) for a batch of expanded prompts.

    Args:
        input_ids: ``[B, T]`` with every media item already expanded to its placeholder tokens.
        media: placeholder ids and token geometry.
        image_grid_thw: ``[num_images, 3]`` rows ``(1, a, b)``: an a x b grid of crops, in prompt order
            over the whole batch. Each image spans ``a * b * s**2`` tokens.
        video_grid_thw: ``[num_videos, 3]`` rows ``(frames, a, b)``; ``frames * a * b * s**2`` tokens.
        audio_chunks: ``[num_audios]`` number of 30 s chunks; ``chunks * audio_tokens_per_chunk`` tokens.
        video_seconds_per_frame: ``[num_videos]`` seconds between sampled frames (1 / sampling fps);
            default 1.0.
        attention_mask: ``[B, T]``, 1 for real tokens; padded slots (either side) get position 1 and are
            skipped, so a left-padded row gets the same ids as the unpadded prompt.

    Layout rules (report §2.4). Each media block starts at ``T0 = max(previous ids) + 1``; text continues
    one by one from the max of what precedes it.

    - image crop (h_c, w_c), token (i, j) inside it: ``(T0, T0 + h_c*s + i, T0 + w_c*s + j)``, crop by crop;
    - video frame f: as an image with ``t = T0 + round(f * seconds_per_frame * 2)``;
    - audio group g (over all chunks of that audio): every token ``t = h = w = T0 + round(6 * g)``;
    - quirk kept for checkpoint parity: a prompt with no image and no video gets plain sequential 1-D ids,
      its audio tokens included.

    Deliberate difference: the released code tests for images and videos once per *batch*, so an audio-only
    prompt batched with an image prompt gets grouped 3-D ids, and its answer depends on its batch-mates
    (a model trained on mixed batches then meets other ids at inference, where it runs alone). We decide per
    prompt, which equals the released ids for a batch of one and for the single-modality batches of the
    released sampler.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    batch = input_ids.shape[0]
    device = input_ids.device
    mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    visual = ((input_ids == media.image_token_id) | (input_ids == media.video_token_id)) & mask
    position_ids = _sequential_position_ids(mask)
    if not visual.any() and not _rows(image_grid_thw) and not _rows(video_grid_thw):
        return position_ids

    images = iter(_rows(image_grid_thw))
    videos = iter(zip(_rows(video_grid_thw), _seconds(video_seconds_per_frame, video_grid_thw)))
    audios = iter(_rows(audio_chunks))
    for row in range(batch):
        tokens = input_ids[row][mask[row]].tolist()
        ids = _row_position_ids(tokens, media, images, videos, audios, row)  # also consumes the row's grids
        if visual[row].any():
            position_ids[:, row, mask[row]] = ids.to(device)
    for name, rest in (("image", images), ("video", videos), ("audio", audios)):
        if next(rest, None) is not None:
            raise ValueError(f"more {name} grids were given than {name} placeholder blocks found in input_ids")
    return position_ids


def _sequential_position_ids(mask: torch.Tensor) -> torch.Tensor:
    positions = mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(~mask, 1)
    return positions.unsqueeze(0).expand(3, -1, -1).contiguous()


def _rows(t: torch.Tensor | None) -> list:
    return [] if t is None else t.tolist()


def _seconds(seconds: torch.Tensor | None, grids: torch.Tensor | None) -> list[float]:
    n = 0 if grids is None else len(grids)
    if seconds is None:
        return [1.0] * n
    if len(seconds) != n:
        raise ValueError(f"video_seconds_per_frame has {len(seconds)} entries for {n} videos")
    return [float(s) for s in seconds.tolist()]


def _row_position_ids(tokens: list[int], media: MediaTokens, images, videos, audios, row: int) -> torch.Tensor:
    s = media.spatial_pool
    placeholder = {"image": media.image_token_id, "video": media.video_token_id, "audio": media.audio_token_id}
    pieces: list[torch.Tensor] = []
    next_id = 0
    i = 0
    text_start = 0

    def flush_text(end: int) -> None:
        nonlocal next_id
        if end > text_start:
            pieces.append(torch.arange(next_id, next_id + end - text_start).expand(3, -1))
            next_id += end - text_start

    while i < len(tokens):
        token = tokens[i]
        if token == media.image_token_id:
            kind, grid, spf = "image", _next(images, "image", row), 0.0
        elif token == media.video_token_id:
            (grid, spf), kind = _next(videos, "video", row), "video"
        elif token == media.audio_token_id:
            kind, grid, spf = "audio", _next(audios, "audio", row), 0.0
        else:
            i += 1
            continue
        flush_text(i)
        if kind == "audio":
            block = _audio_block(int(grid), media.audio_tokens_per_chunk)
        else:
            block = _visual_block(grid, s, spf)
        n = block.shape[1]
        if tokens[i : i + n] != [placeholder[kind]] * n:
            raise ValueError(
                f"batch row {row}: {kind} at token {i} needs {n} placeholder tokens (grid {grid}) but the "
                "prompt holds fewer; the processor's expansion and the grids disagree"
            )
        pieces.append(block + next_id)
        next_id = int(pieces[-1].max()) + 1
        i += n
        text_start = i
    flush_text(len(tokens))
    if not pieces:
        return torch.zeros(3, 0, dtype=torch.long)
    return torch.cat(pieces, dim=1)


def _next(it, kind: str, row: int):
    item = next(it, None)
    if item is None:
        raise ValueError(f"batch row {row}: a {kind} placeholder has no matching grid entry")
    return item


def _visual_block(grid: list[int], s: int, seconds_per_frame: float) -> torch.Tensor:
    """Ids ``[3, frames*a*b*s*s]`` relative to the block start: frame, crop row, crop column, then s x s."""
    frames, a, b = (int(v) for v in grid)
    f = torch.arange(frames).view(frames, 1, 1, 1, 1)
    hc = torch.arange(a).view(1, a, 1, 1, 1)
    wc = torch.arange(b).view(1, 1, b, 1, 1)
    i = torch.arange(s).view(1, 1, 1, s, 1)
    j = torch.arange(s).view(1, 1, 1, 1, s)
    shape = (frames, a, b, s, s)
    t = torch.round(f.double() * seconds_per_frame * TOKENS_PER_SECOND).long().expand(shape)
    h = (hc * s + i).expand(shape)
    w = (wc * s + j).expand(shape)
    return torch.stack([t.reshape(-1), h.reshape(-1), w.reshape(-1)])


def _audio_block(chunks: int, tokens_per_chunk: int) -> torch.Tensor:
    """Ids ``[3, chunks*tokens_per_chunk]``: groups of 3 s share one id, stepping by 3 s x 2 per second."""
    per_group = tokens_per_chunk // AUDIO_GROUPS_PER_CHUNK
    groups = torch.arange(chunks * AUDIO_GROUPS_PER_CHUNK, dtype=torch.float64)
    ids = torch.round(groups * AUDIO_SECONDS_PER_GROUP * TOKENS_PER_SECOND).long()
    return ids.repeat_interleave(per_group).expand(3, -1)
