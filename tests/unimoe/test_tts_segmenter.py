"""The released span parsing and segment cutting, and the Speaker's per-sample outcomes."""

from __future__ import annotations

import torch

from unimoe.tts import moe_tts, wavtokenizer
from unimoe.tts.segmenter import SpeechTokens, cut_points, segment, speech_spans
from unimoe.tts.speaker import Speaker

START, PROMPT_END, END = 900, 901, 902
DOT, COMMA, DIGIT = 13, 11, 15
TOKENS = SpeechTokens(START, PROMPT_END, END, punctuation=frozenset({DOT, COMMA}), digits=frozenset({DIGIT}))


def test_cut_after_punctuation_once_the_segment_is_long_enough():
    text = [1, 2, 3, 4, 5, COMMA, 6, 7, 8, 9, 10, 12, DOT, 20, 21]
    assert cut_points(text, TOKENS, maxcutlen=16) == [6, 13]
    assert cut_points([1, 2, COMMA, 3, 4], TOKENS, maxcutlen=16) == []  # too short (release minlen 5)


def test_no_cut_next_to_a_digit():
    text = [1, 2, 3, 4, 5, 6, COMMA, DIGIT, 7, 8]  # "…6,000 …": the comma sits before a digit
    assert cut_points(text, TOKENS, maxcutlen=16) == []
    long = list(range(30, 50))
    long[17] = DIGIT
    cuts = cut_points(long, TOKENS, maxcutlen=16)
    assert cuts and all(long[c] != DIGIT for c in cuts)


def test_long_text_without_punctuation_is_cut_at_maxcutlen():
    text = list(range(100, 140))
    cuts = cut_points(text, TOKENS, maxcutlen=16)
    assert cuts == [17, 35]  # the first segment counts from the prompt-end token, later ones from the cut
    pieces = segment(text, TOKENS, maxcutlen=16)
    assert [len(p) for p in pieces] == [18, 19, 6] and all(p[-1] == DOT for p in pieces)


def test_spans_parse_prompt_and_text_and_tolerate_a_missing_end():
    ids = [5, START, 40, 41, PROMPT_END, 1, 2, 3, END, 6, START, 42, PROMPT_END, 7, 8, 3]
    spans = speech_spans(ids, TOKENS, maxcutlen=16, ignore=(3,))
    assert [(s.prompt, s.text) for s in spans] == [([40, 41], [1, 2]), ([42], [7, 8])]
    assert spans[0].segments == [[1, 2, DOT]]
    empty = speech_spans([START, 40, PROMPT_END, END], TOKENS, maxcutlen=16)
    assert empty[0].text == [] and empty[0].segments == []


def test_token_classes_from_the_qwen_tokenizer():
    from unimoe.tokenizer import SPECIAL_IDS, load_tokenizer

    tok = load_tokenizer()
    tokens = SpeechTokens.for_tokenizer(tok, SPECIAL_IDS["<|speech_start|>"], SPECIAL_IDS["<|speech_prompt|>"],
                                        SPECIAL_IDS["<|speech_end|>"])
    assert (tokens.start, tokens.prompt_end, tokens.end) == (151_668, 151_670, 151_669)  # released ids
    assert tokens.full_stop == 13 and 13 in tokens.punctuation
    assert tok.encode("7", add_special_tokens=False)[0] in tokens.digits


def _speaker(silent: bool = False) -> Speaker:
    torch.manual_seed(0)
    gen = moe_tts.MoETTS(moe_tts.preset("tiny", odim=4096, llm_vocab_size=1000)).eval()
    codec = wavtokenizer.WavTokenizer(wavtokenizer.preset("tiny")).eval()
    if silent:
        with torch.no_grad():
            codec.head.out.bias.fill_(-60.0)  # every magnitude ~ e^-60
            codec.head.out.weight.zero_()
    return Speaker(gen, codec, TOKENS, max_codes_per_segment=6)


def test_speaker_turns_a_span_into_24khz_audio_conditioned_on_the_previous_segment():
    speaker = _speaker()
    text = [1, 2, 3, 4, 5, 6, COMMA, 7, 8, 9]
    speech = speaker.speak_ids([START, 40, PROMPT_END, *text, END])
    assert speech.problem is None and speech.sample_rate == 24_000
    assert len(speech.codes) == 2  # two segments
    assert speech.waveform.shape == (600 * sum(len(c) for c in speech.codes),)


def test_speaker_reports_what_cannot_be_spoken():
    speaker = _speaker()
    assert "no <speech start>" in speaker.speak_ids([1, 2, 3]).problem
    assert "no text" in speaker.speak_ids([START, 40, PROMPT_END, END]).problem
    assert "silence" in _speaker(silent=True).speak_ids([START, PROMPT_END, 1, 2, END]).problem
