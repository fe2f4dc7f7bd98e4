"""The omnimodal model: the MoE decoder plus vision and audio towers and their connectors.

Module names follow the released checkpoint (``model.*``, ``lm_head``, ``vision_tower.*``,
``vision_aligner.*``, ``audio_tower.*``, ``audio_aligner.*``), so :mod:`unimoe.checkpoint` loads it. Media
features are computed once per prompt and written over their placeholder tokens' embeddings, in prompt
order, then everything runs as text does.
"""

from __future__ import annotations

import torch

from unimoe.config import UniMoEConfig
from unimoe.connectors import VisionAligner, WhisperQFormer
from unimoe.encoders import AudioSpec, AudioTower, VisionSpec, VisionTower
from unimoe.model import GenerationResult, UniMoEForCausalLM, generate
from unimoe.probes import RoutingProbe
from unimoe.processor import AUDIO_PAD, IMAGE_PAD, VIDEO_PAD, Batch


class UniMoEOmni(UniMoEForCausalLM):
    def __init__(self, config: UniMoEConfig):
        super().__init__(config)
        self.vision_tower = self.vision_aligner = self.audio_tower = self.audio_aligner = None
        if config.vision_config:
            spec = VisionSpec.from_config(config.vision_config)
            self.vision_tower = VisionTower(spec)
            pool = spec.spatial_pool if spec.spatial_pool != spec.patches_per_side else None
            self.vision_aligner = VisionAligner(self.vision_tower.hidden_size, config.hidden_size, pool)
        if config.audio_config:
            spec = AudioSpec.from_config(config.audio_config)
            self.audio_tower = AudioTower(spec)
            self.audio_aligner = WhisperQFormer(self.audio_tower.config, spec.query_tokens, config.hidden_size)

    def media_features(self, pixels: torch.Tensor | None, audio: torch.Tensor | None) -> dict[int, torch.Tensor]:
        feats: dict[int, torch.Tensor] = {}
        if pixels is not None:
            if self.vision_tower is None:
                raise ValueError("this model has no vision tower (vision_config is empty)")
            feats[IMAGE_PAD] = self.vision_aligner(self.vision_tower(pixels)).flatten(0, 1)
        if audio is not None:
            if self.audio_tower is None:
                raise ValueError("this model has no audio tower (audio_config is empty)")
            feats[AUDIO_PAD] = self.audio_aligner(self.audio_tower(audio)).flatten(0, 1)
        return feats

    def embed(self, batch: Batch) -> torch.Tensor:
        """Token embeddings with every image, video and audio placeholder replaced by its features."""
        batch = batch.to(self.lm_head.weight.device)
        embeds = self.model.embed_tokens(batch.input_ids)
        feats = self.media_features(batch.pixel_values, batch.audio_features)
        if batch.video_pixels is not None:
            feats[VIDEO_PAD] = self.media_features(batch.video_pixels, None)[IMAGE_PAD]
        for token_id, values in feats.items():
            slots = batch.input_ids == token_id
            if int(slots.sum()) != values.shape[0]:
                raise ValueError(f"{int(slots.sum())} placeholders of id {token_id} but {values.shape[0]} media tokens")
            embeds = embeds.masked_scatter(slots[..., None], values.to(embeds.dtype))
        return embeds

    def forward_batch(self, batch: Batch, probe: RoutingProbe | None = None, **kw):
        batch = batch.to(self.lm_head.weight.device)
        return self(inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids, probe=probe, modality_ids=batch.modality_ids, **kw)

    @torch.inference_mode()
    def generate_batch(self, batch: Batch, probe: RoutingProbe | None = None, **kw) -> GenerationResult:
        batch = batch.to(self.lm_head.weight.device)
        return generate(self, inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask,
                        position_ids=batch.position_ids, probe=probe, modality_ids=batch.modality_ids, **kw)
