"""omniworld speech output: "say this phrase", scored like Seed-TTS (the speech transcribed by the task's ASR,
WER against the phrase). The phrases are new combinations of the small vocabulary the tiny speech head is
trained on, held out of its training by construction (:func:`unimoe.train.tts_phrases.held_out_phrases`);
``data=sample`` takes a seeded ``options.sample_n`` of them, ``data=full`` all. No files are read: the rows are
generated here, and the oracle's reference recording is the phrase spoken by the hibari voice the speech head
learnt from.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from harness.api import DocumentError, Reference
from tasks.tts import TTS


class OmniWorldSpeechOut(TTS):
    def _phrases(self) -> list[str]:
        from unimoe.train.tts_phrases import held_out_phrases

        phrases = list(held_out_phrases())
        if self.data == "sample":
            random.Random(int(self.config.options.get("seed", 0))).shuffle(phrases)
            phrases = phrases[: int(self.config.options.get("sample_n", 6))]
        return phrases

    def data_source(self) -> str:
        return f"generated:omniworld-speech-out/{self.data}/seed{self.config.options.get('seed', 0)}"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        for i, phrase in enumerate(self._phrases()):
            yield {"id": f"say-{i:02d}", "text": phrase}

    def oracle(self, doc: dict[str, Any]) -> Reference:
        import io

        import soundfile as sf
        from hibari import SAMPLE_RATE, Hibari

        from harness.media import stored_bytes

        buffer = io.BytesIO()
        sf.write(buffer, Hibari()(doc["text"] + ".", seed=0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
        return Reference(text=doc["text"], audio=str(stored_bytes(buffer.getvalue(), ".wav")))
