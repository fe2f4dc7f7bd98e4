"""Trainer: freezing, loss goes down, exact resume after interruption, curves; losses' math."""

from __future__ import annotations

import csv

import pytest
import torch

from unimoe.config import UniMoEConfig
from unimoe.omni import UniMoEOmni
from unimoe.processor import Processor
from unimoe.tokenizer import load_tokenizer
from unimoe.train.losses import aux_weight, dpo_loss, group_advantages, gspo_loss, sequence_logprobs
from unimoe.train.omniworld import training_examples
from unimoe.train.trainer import Stage, Trainer, freeze


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    config = UniMoEConfig.preset("tiny_omni")
    processor = Processor.for_config(config, load_tokenizer())
    examples = list(training_examples(tmp_path_factory.mktemp("ow"), n=4, modalities=("image", "text")))
    return config, processor, examples


def make(config, seed=0):
    torch.manual_seed(seed)
    return UniMoEOmni(config)


STAGE = dict(name="moe", trainable=(r"^model\.layers\.\d+\.mlp\.", r"^vision_aligner\."), steps=6, lr=3e-3,
             batch_size=4, checkpoint_every=100)


def test_freezing_trains_only_matching_parameters(setup):
    config, _, _ = setup
    model = make(config)
    names = freeze(model, [r"^vision_aligner\."])
    assert names and all(n.startswith("vision_aligner.") for n in names)
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("model."))
    with pytest.raises(ValueError, match="no parameter matches"):
        freeze(model, [r"^nothing$"])


def test_interrupted_training_resumes_to_identical_weights(setup, tmp_path):
    config, processor, examples = setup
    straight = make(config)
    Trainer(straight, processor, Stage(**STAGE), examples, tmp_path / "a", progress=False).run()
    interrupted = make(config)
    Trainer(interrupted, processor, Stage(**STAGE), examples, tmp_path / "b", progress=False).run(stop_after=3)
    resumed = make(config)  # a fresh process: same init, then the saved state
    Trainer(resumed, processor, Stage(**STAGE), examples, tmp_path / "b", progress=False).run()
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    rows = list(csv.DictReader(open(tmp_path / "a" / "moe" / "log.csv")))
    assert len(rows) == 6 and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert rows[0]["aux"] != ""
    assert (tmp_path / "a" / "moe" / "loss.png").stat().st_size > 1000
    frozen_before = make(config).model.layers[0].self_attn.q_proj.weight
    torch.testing.assert_close(straight.model.layers[0].self_attn.q_proj.weight, frozen_before)


def test_aux_schedule_and_preference_losses():
    assert aux_weight(0, 0.025, 0.001, 100) == 0.025 and aux_weight(50, 0.025, 0.001, 100) == pytest.approx(0.013)
    assert aux_weight(500, 0.025, 0.001, 100) == pytest.approx(0.001) and aux_weight(7, 0.02, 0.0, 0) == 0.02
    zero = torch.zeros(3)
    assert dpo_loss(zero, zero, zero, zero).item() == pytest.approx(0.6931, abs=1e-4)  # log 2 at no margin
    assert dpo_loss(torch.ones(3), zero, zero, zero, beta=1.0) < dpo_loss(zero, torch.ones(3), zero, zero, beta=1.0)
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    assert adv.sum().abs() < 1e-6 and adv[0, 0] > 0
    logp_old = torch.tensor([-4.0, -4.0])
    lengths = torch.tensor([2, 2])
    advantages = torch.tensor([1.0, -1.0])
    new = logp_old.clone().requires_grad_(True)
    gspo_loss(new, logp_old, lengths, advantages).backward()
    assert new.grad[0] < 0 < new.grad[1]  # raise the good answer's probability, lower the bad one's
    far = gspo_loss(logp_old + 10, logp_old, lengths, torch.tensor([1.0, 1.0]))
    assert far.item() == pytest.approx(-1.2)  # ratio clipped at 1 + 0.2


def test_sequence_logprobs_counts_only_labelled_tokens():
    logits = torch.zeros(1, 4, 5)
    labels = torch.tensor([[-100, 2, -100, 3]])
    total, count = sequence_logprobs(logits, labels)
    assert count.item() == 2 and total.item() == pytest.approx(2 * torch.log(torch.tensor(0.2)).item())


def test_labels_only_logits_gives_the_same_loss(setup):
    config, processor, examples = setup
    from unimoe.train.data import collate

    model = make(config).eval()
    batch = collate(processor, examples[:3])
    kw = dict(inputs_embeds=model.embed(batch), attention_mask=batch.attention_mask, position_ids=batch.position_ids,
              labels=batch.extras["labels"])
    with torch.no_grad():
        full, fast = model(**kw), model(**kw, labels_only_logits=True)
    torch.testing.assert_close(fast.loss, full.loss, rtol=1e-5, atol=1e-6)
    assert fast.logits.shape[0] == int((batch.extras["labels"][:, 1:] != -100).sum())


@pytest.mark.slow
def test_training_memorises_a_small_set(setup, tmp_path):
    """The whole path (data, labels, masks, loss, optimiser, generation) conditions on the prompt: eight
    different text questions are answered back exactly after a short run."""
    config, processor, _ = setup
    examples = list(training_examples(tmp_path / "data", n=8, modalities=("text",)))
    model = make(config)
    Trainer(model, processor, Stage(name="t", trainable=(".*",), steps=150, lr=3e-3, batch_size=8,
                                    checkpoint_every=1000), examples, tmp_path, progress=False).run()
    model.eval()
    answers = []
    for e in examples:
        batch = processor.collate([processor.encode([{"role": "user", "content": [e["messages"][0]["content"]]}])])
        out = model.generate_batch(batch, max_new_tokens=4, eos_token_id=[151645],
                                   decode=lambda ids: processor.tokenizer.decode(ids, skip_special_tokens=True))
        answers.append(out.texts[0].strip())
    assert answers == [e["answer"] for e in examples]
