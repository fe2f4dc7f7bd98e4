"""Preference stages: the verifiable reward, GSPO and DPO moving a toy policy the right way, exact resume,
the frozen DPO reference, and the RL recipe from a saved model through the command line.

The toy: a text-only tiny model fine-tuned on two sums whose answers are half right, half wrong, so that
sampling at temperature 1 gives both and the reward has something to prefer.
"""

from __future__ import annotations

import copy
import csv

import pytest
import torch

from unimoe.config import UniMoEConfig
from unimoe.omni import UniMoEOmni
from unimoe.processor import Processor
from unimoe.tokenizer import load_tokenizer
from unimoe.train.losses import sequence_logprobs
from unimoe.train.omniworld import MCQ_SUFFIX
from unimoe.train.preference import DPOTrainer, GSPOTrainer, answer_logprobs, answer_reward
from unimoe.train.trainer import Stage, Trainer

SUMS = [("What is 2 + 3? Answer with a number.", "5", "6"), ("What is 1 + 3? Answer with a number.", "4", "7")]
MCQ = ("<image>What colour are the shapes in the image?\nA. red\nB. green\nC. blue\nD. yellow" + MCQ_SUFFIX)


def example(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "media": {}, "answer": answer, "modality": "text"}


PROMPTS = [example(q, right) for q, right, _ in SUMS]


@pytest.mark.parametrize("response, gold, reward", [
    ("B", "B", 1), ("(B)", "B", 1), ("B.", "B", 1), ("B) green", "B", 1), ("b", "B", 1), ("The answer is B.", "B", 1),
    ("Answer: (B)", "B", 1), ("green", "B", 1), ("Green.", "B", 1), ("the answer is green", "B", 1),
    ("C", "B", 0), ("B or C", "B", 0), ("green or blue", "B", 0), ("BB", "B", 0), ("Bottle", "B", 0), ("", "B", 0),
    ("A cat", "A", 0),  # a sentence starting with the article, not option A
])
def test_multiple_choice_reward_compares_the_option_letter(response, gold, reward):
    assert answer_reward(response, {"messages": [{"content": MCQ}], "answer": gold}) == reward


@pytest.mark.parametrize("response, gold, reward", [
    ("8", "8", 1), (" 8.", "8", 1), ("8.0", "8", 1), ("eight", "8", 1), ("The answer is 8", "8", 1),
    ("18", "8", 0), ("80", "8", 0), ("8 apples", "8", 0), ("", "8", 0),
    ("Three, one.", "three one", 1), ("3 1", "three one", 1), ("31", "three one", 0), ("three", "three one", 0),
])
def test_short_answer_reward_normalises_case_punctuation_and_numbers(response, gold, reward):
    assert answer_reward(response, {"messages": [{"content": "What is it?"}], "answer": gold}) == reward


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(processor, a policy that answers each sum right or wrong about equally often)."""
    config = UniMoEConfig.preset("tiny_omni").replace(vision_config={}, audio_config={})
    processor = Processor.for_config(config, load_tokenizer())
    torch.manual_seed(0)
    model = UniMoEOmni(config)
    half_right = [example(q, a) for q, right, wrong in SUMS for a in (right, wrong)]
    Trainer(model, processor, Stage(name="sft", trainable=(".*",), steps=40, lr=1e-2, batch_size=4, aux=False,
                                    checkpoint_every=1000), half_right, tmp_path_factory.mktemp("sft"),
            progress=False).run()
    return processor, model


def stage(kind: str, **kw) -> Stage:
    base = dict(name=kind, kind=kind, trainable=(".*",), steps=8, lr=3e-3, batch_size=2, group_size=8,
                max_new_tokens=3, aux=False, checkpoint_every=1000)
    return Stage(**{**base, **kw})


def answer_logp(trainer, model, which: int) -> torch.Tensor:
    """log p(answer + <|im_end|> | prompt) per sum; ``which`` 1: the right answers, 2: the wrong ones."""
    tok = trainer.processor.tokenizer
    batch = trainer.batch([trainer.with_answer(p, tok.encode(s[which]) + [trainer.eos]) for p, s in zip(PROMPTS, SUMS)])
    model.eval()
    with torch.no_grad():
        return answer_logprobs(model, model, batch)[0]


def test_answer_logprobs_match_the_full_logits_computation(toy, tmp_path):
    processor, sft = toy
    trainer = GSPOTrainer(sft, processor, stage("gspo"), PROMPTS, tmp_path, progress=False)
    batch = trainer.batch([trainer.with_answer(p, [20, 21, trainer.eos]) for p in PROMPTS])
    sft.eval()
    with torch.no_grad():
        fast, count, _ = answer_logprobs(sft, sft, batch)
        full = sequence_logprobs(sft.forward_batch(batch).logits, batch.extras["labels"])
    torch.testing.assert_close(fast, full[0], rtol=1e-5, atol=1e-5)
    assert count.tolist() == full[1].tolist() == [3, 3]


def test_gspo_raises_the_probability_of_rewarded_answers(toy, tmp_path):
    processor, sft = toy
    policy = copy.deepcopy(sft)
    trainer = GSPOTrainer(policy, processor, stage("gspo"), PROMPTS, tmp_path, progress=False)
    right, wrong = answer_logp(trainer, policy, 1), answer_logp(trainer, policy, 2)
    trainer.run()
    right_after, wrong_after = answer_logp(trainer, policy, 1), answer_logp(trainer, policy, 2)
    assert (right_after > right).all() and (wrong_after < wrong).all(), (right, right_after, wrong, wrong_after)
    assert (right_after - right).sum() > 0.5
    rows = list(csv.DictReader(open(tmp_path / "gspo" / "log.csv")))
    assert len(rows) == 8 and 0 < sum(float(r["reward"]) for r in rows) / 8 < 1
    assert (tmp_path / "gspo" / "loss.png").is_file()


def test_dpo_widens_the_margin_and_keeps_the_reference_frozen(toy, tmp_path):
    processor, sft = toy
    policy = copy.deepcopy(sft)
    trainer = DPOTrainer(policy, processor, stage("dpo", group_size=4), PROMPTS, tmp_path, progress=False)
    margin = answer_logp(trainer, policy, 1) - answer_logp(trainer, policy, 2)
    trainer.run()
    margin_after = answer_logp(trainer, policy, 1) - answer_logp(trainer, policy, 2)
    assert (margin_after > margin + 0.3).all(), (margin, margin_after)
    assert not any(p.requires_grad for p in trainer.reference.parameters()) and not trainer.reference.training
    for (name, ref), (_, start) in zip(trainer.reference.named_parameters(), sft.named_parameters()):
        torch.testing.assert_close(ref, start, rtol=0, atol=0, msg=name)
    assert not torch.equal(policy.model.layers[0].self_attn.q_proj.weight, sft.model.layers[0].self_attn.q_proj.weight)
    rows = list(csv.DictReader(open(tmp_path / "dpo" / "log.csv")))
    assert len(rows) == 8 and all(float(r["pairs"]) >= 1 for r in rows) and rows[0]["margin"] != ""


@pytest.mark.parametrize("kind, kw", [("gspo", dict(updates_per_rollout=2)), ("dpo", dict(group_size=4))])
def test_interrupted_preference_stage_resumes_to_identical_weights(toy, tmp_path, kind, kw):
    processor, sft = toy
    trainer_class = GSPOTrainer if kind == "gspo" else DPOTrainer
    settings = stage(kind, steps=4, aux=True, **kw)
    straight = copy.deepcopy(sft)
    trainer_class(straight, processor, settings, PROMPTS, tmp_path / "a", progress=False).run()
    interrupted = copy.deepcopy(sft)  # stops inside a rollout's group of updates (GSPO)
    trainer_class(interrupted, processor, settings, PROMPTS, tmp_path / "b", progress=False).run(stop_after=3)
    resumed = copy.deepcopy(sft)  # a fresh process: the model at stage start, then the saved state
    trainer_class(resumed, processor, settings, PROMPTS, tmp_path / "b", progress=False).run()
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert (tmp_path / "a" / kind / "log.csv").read_text() == (tmp_path / "b" / kind / "log.csv").read_text()


def test_rl_recipe_runs_gspo_then_dpo_from_a_saved_model(tmp_path, capsys):
    from unimoe.checkpoint import save_pretrained
    from unimoe.train.__main__ import main

    torch.manual_seed(0)
    save_pretrained(UniMoEOmni(UniMoEConfig.preset("tiny_omni")), tmp_path / "sft")
    args = ["recipe=unimoe_tiny_rl", f"out_dir={tmp_path / 'rl'}", f"init_from={tmp_path / 'sft'}",
            "data.n_per_modality=2", "data.modalities=[image,text]",
            *[f"stage.{s}.{k}={v}" for s in ("gspo", "dpo") for k, v in
              (("steps", 2), ("batch_size", 2), ("group_size", 2), ("max_new_tokens", 2))]]
    assert main(args) == 0
    for name, column in (("gspo", "reward"), ("dpo", "margin")):
        assert (tmp_path / "rl" / name / "model" / "config.json").is_file()
        header = (tmp_path / "rl" / name / "log.csv").read_text().splitlines()[0]
        assert column in header.split(",")
    assert main(args) == 0
    assert capsys.readouterr().out.count("done earlier") == 2
