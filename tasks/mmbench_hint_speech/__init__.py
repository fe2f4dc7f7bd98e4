"""MMBench with the hint spoken (Uni-MoE v1's "MMBench-Audio", Table 6 of the 2.0 paper): MMBench dev as the
``mmbench`` plugin runs it (circular copies, rule -> judge -> seeded random letter), except that a row's
hint is not written into the prompt but heard: its TTS clip (``options.hint_audio_field``) follows the image.
Rows without a hint get the image and the text only."""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import AudioPart, ImagePart, Part
from tasks.common import media_field, present
from tasks.mmbench_en_dev import MMBench


class MMBenchHintSpeech(MMBench):
    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        return super().prompt_text({**doc, "hint": None})

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        parts: list[Part] = [ImagePart(self.media_path(media_field(doc, "image", self.name)))]
        field = self.config.options.get("hint_audio_field", "hint_audio")
        if present(doc.get("hint")):
            parts.append(AudioPart(self.media_path(media_field(doc, field, self.name))))
        return parts
