"""Language-model output ids -> speech: spans parsed and cut (:mod:`unimoe.tts.segmenter`), each segment's
codes generated greedily by MoE-TTS conditioned on the span's voice prompt and on the last ``prefix_len``
codes of the previous segment, all codes decoded by WavTokenizer into one 24 kHz waveform. (The released ``generate_from_tokens`` passes no
prefix at inference although training conditions on it; ``prefix_len = 0`` in the config reproduces that.)

What cannot become speech is a result, not an exception: no span, a span without text, or codes that decode
to silence give ``Speech.problem`` (one line naming the cause) so that callers record it against the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from unimoe.tts.moe_tts import MoETTS
from unimoe.tts.segmenter import SpeechTokens, speech_spans
from unimoe.tts.wavtokenizer import WavTokenizer

SILENCE_RMS = 1e-4  # below this root-mean-square amplitude the waveform counts as silence


@dataclass
class Speech:
    waveform: torch.Tensor | None  # [S] float32 at sample_rate, None when there is nothing to play
    sample_rate: int
    codes: list[list[int]] = field(default_factory=list)  # per segment
    problem: str | None = None


class Speaker:
    def __init__(self, generator: MoETTS, codec: WavTokenizer, tokens: SpeechTokens, ignore: tuple[int, ...] = (),
                 max_codes_per_segment: int = 1000):
        self.generator, self.codec, self.tokens = generator, codec, tokens
        self.ignore = ignore
        self.max_codes = max_codes_per_segment

    def speak_ids(self, ids: list[int], max_codes: int | None = None) -> Speech:
        """Speech for every span in ``ids`` (spans concatenated in order), at most ``max_codes`` codes per
        segment (the generator's own cap when None)."""
        cap = min(self.max_codes, max_codes or self.max_codes)
        rate = self.codec.sample_rate
        spans = speech_spans(ids, self.tokens, self.generator.config.maxcutlen, self.ignore)
        if not spans:
            return Speech(None, rate, problem="no <speech start> ... <prompt end> ... <speech end> span in the output")
        if not any(span.segments for span in spans):
            return Speech(None, rate, problem="the speech span has no text to speak")
        device = next(self.generator.parameters()).device
        all_codes: list[list[int]] = []
        for span in spans:
            prompt = torch.tensor(span.prompt, dtype=torch.long, device=device)
            previous: list[int] = []
            for text in span.segments:
                prefix_len = self.generator.config.prefix_len
                prefix = torch.tensor(previous[-prefix_len:] if prefix_len else [], dtype=torch.long, device=device)
                codes = self.generator.generate(torch.tensor(text, device=device), prompt, prefix, cap)
                previous = codes.tolist()
                all_codes.append(previous)
        flat = [c for seg in all_codes for c in seg]
        if not flat:
            return Speech(None, rate, all_codes, problem="the speech generator produced no codes")
        with torch.inference_mode():
            wave = self.codec.decode(torch.tensor([flat], device=device))[0].float().cpu()
        if not torch.isfinite(wave).all():
            return Speech(None, rate, all_codes, problem="the decoded speech holds non-finite samples")
        if wave.pow(2).mean().sqrt() < SILENCE_RMS:
            return Speech(None, rate, all_codes, problem="the codes decode to silence")
        return Speech(wave.clamp(-1, 1), rate, all_codes)
