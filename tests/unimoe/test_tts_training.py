"""The tiny speech head's training command: every stage on a few steps, resume, export loadable by the adapter."""

from __future__ import annotations

import torch

from unimoe.train import tts as train_tts
from unimoe.train.tts_phrases import train_phrases
from unimoe.tts.checkpoint import load_speech_head


def test_training_runs_every_stage_resumes_and_exports(tmp_path):
    cfg = dict(out_dir=str(tmp_path / "run"), phrases=2, codec_steps=3, decoder_steps=2, tts_steps=3, codes_used=16,
               batch=2, tts_batch=2, prefix_rate=0.5, crop_seconds=0.3, save_every=2)
    logs: list[str] = []
    export = train_tts.run(cfg, log=logs.append)
    assert any(line.startswith("[codec] codebook: 16 centres") for line in logs)
    assert any(line.startswith("[tts] step 3/3") for line in logs)
    generator, codec = load_speech_head(export)
    assert codec.sample_rate == 24_000 and generator.config.idim == 64  # the LM embedding's width
    lm = train_tts.lm_embedding("unimoe/weights/unimoe_tiny").to(torch.bfloat16).float()
    copy = generator.qwenvl_embed_tokens.weight
    from unimoe.tokenizer import load_tokenizer

    used = sorted({i for p in train_phrases(2) for i in train_tts.phrase_ids(load_tokenizer(), p)})
    unused = torch.ones(len(lm), dtype=torch.bool)
    unused[used] = False
    torch.testing.assert_close(copy[unused], lm[unused])  # the LM's embedding, copied
    assert not torch.equal(copy[used], lm[used])  # the phrases' rows tuned
    # a second run finds every stage done and trains nothing
    again: list[str] = []
    train_tts.run(cfg, log=again.append)
    assert not any("step" in line for line in again)


def test_an_interrupted_stage_resumes_at_its_last_saved_step(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    run = train_tts.Resumable(tmp_path / "state.pt", model, opt, every=5)
    assert run.start() == 0
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    run.maybe_save(5)
    saved = model.weight.detach().clone()
    fresh = torch.nn.Linear(2, 2)
    resumed = train_tts.Resumable(tmp_path / "state.pt", fresh, torch.optim.AdamW(fresh.parameters()), every=5)
    assert resumed.start() == 5
    torch.testing.assert_close(fresh.weight, saved)


def test_arguments_are_checked():
    assert train_tts.parse_args(["tts_steps=7", "out_dir=x"]) == {"tts_steps": 7, "out_dir": "x"}
    import pytest

    with pytest.raises(SystemExit, match="unknown argument 'tts_step=7'"):
        train_tts.parse_args(["tts_step=7"])
