"""Preference optimisation after SFT (reference §6.2: online GSPO, then DPO on the policy's own rollouts).

Both stages are :class:`~unimoe.train.trainer.Trainer` s that replace only the per-step loss, so freezing,
AdamW and the schedule, clipping, checkpoints with exact resume, curves and DDP are the SFT ones.

- ``gspo``: each step samples ``group_size`` answers per prompt from the current policy (eval mode, at
  ``temperature``), rewards them with :func:`answer_reward` against the item's gold answer, normalises the
  rewards within each prompt's group and optimises :func:`~unimoe.train.losses.gspo_loss`. The old policy's
  log-probabilities are computed right after sampling, in the same (train-mode) forward the update uses, so
  the ratio measures the update, not the switch from eval to train mode (router jitter, LoRA dropout);
  ``updates_per_rollout`` > 1 reuses a rollout batch for several steps (it is checkpointed with them).
- ``dpo``: the same rollouts judged by the same reward give pairs: chosen = a correct rollout, or the gold
  answer when none is correct (the paper's demonstrations for zero-accuracy prompts), rejected = an
  incorrect rollout. Prompts without an incorrect rollout give no pair. The reference is a frozen copy of
  the model at stage start, scored in eval mode. The paper iterates GSPO and DPO; a recipe may list the two
  stages repeatedly.

Sampling uses a generator seeded by (seed, rank, step), so rollouts, like batches, are a function of the step
and a resumed stage draws what an uninterrupted one would have drawn.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from unimoe.probes import TEXT
from unimoe.train.data import IGNORE, collate
from unimoe.train.losses import dpo_loss, group_advantages, gspo_loss
from unimoe.train.omniworld import MCQ_SUFFIX
from unimoe.train.trainer import Trainer

# --------------------------------------------------------------------------------------------------
# The verifiable reward

_OPTION_LINE = re.compile(r"^([A-Z])\. (.+)$", re.MULTILINE)
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)


def question_options(prompt: str) -> dict[str, str]:
    """``{letter: option text}`` of a multiple-choice prompt (omniworld's ``A. text`` lines), else ``{}``."""
    if MCQ_SUFFIX.strip() not in prompt:
        return {}
    return {m[1]: m[2].strip() for m in _OPTION_LINE.finditer(prompt)}


def _words(text: str) -> list[str]:
    """Lower-case words without punctuation; number words and numerals in one canonical form."""
    out = []
    for w in re.findall(r"[a-z]+|\d+(?:\.\d+)?", text.lower()):
        if re.fullmatch(r"\d+(?:\.\d+)?", w):
            w = str(int(float(w))) if float(w).is_integer() else w
        out.append(_NUMBER_WORDS.get(w, w))
    return out


def extract_letter(response: str, options: dict[str, str]) -> str | None:
    """The option a multiple-choice answer picks, or None when it picks none or several.

    Accepted: a leading letter standing alone (``B``, ``(B)``, ``B.``, ``B) red``, ``b``), ``answer is B``,
    or the text of exactly one option (``red``). ``A cat`` is a sentence, not option A.
    """
    s = _PREFIX.sub("", response.strip())
    letters = "".join(options)
    lead = re.match(rf"^\(?([{letters}])\)?(?:[.:),]|\s*$)", s)
    if lead:
        return lead[1]
    if re.fullmatch(rf"\(?([{letters.lower()}])\)?[.]?", s):
        return s.strip("().").upper()
    said = re.search(rf"answer\s*(?:is|:)\s*\(?([{letters}])\)?(?![A-Za-z])", response, re.IGNORECASE)
    if said:
        return said[1].upper()
    words = _words(s)
    exact = [k for k, v in options.items() if _words(v) == words]
    if exact:
        return exact[0]
    text = " " + " ".join(words) + " "
    named = [k for k, v in options.items() if f" {' '.join(_words(v))} " in text]
    return named[0] if len(named) == 1 else None


def answer_reward(response: str, example: dict[str, Any]) -> float:
    """1.0 when the response gives the example's gold answer, else 0.0.

    Multiple choice compares the option letter (:func:`extract_letter`); a short answer compares
    words after normalisation (case, punctuation, an ``answer is`` prefix, ``8``/``8.0``/``eight``).
    """
    gold = str(example["answer"])
    options = question_options(example["messages"][0]["content"])
    if options:
        return float(extract_letter(response, options) == gold)
    words = _words(_PREFIX.sub("", response.strip()))
    return float(bool(words) and words == _words(gold))


# --------------------------------------------------------------------------------------------------
# Rollouts and their log-probabilities


def answer_logprobs(model: torch.nn.Module, core: torch.nn.Module, batch, aux_weights: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Summed log-probabilities of each row's labelled tokens ``[B]``, their counts ``[B]``, and the aux loss
    (weighted per token as SFT weights it when ``aux_weights``).

    The LM head runs on labelled positions only (as SFT does): a 150k vocabulary over every position
    would not fit a CPU's memory for a group of answers.
    """
    labels = batch.extras["labels"]
    out = model(inputs_embeds=core.embed(batch), attention_mask=batch.attention_mask,
                position_ids=batch.position_ids, labels=labels, labels_only_logits=True,
                token_weights=batch.extras["token_weights"] if aux_weights else None)
    targets = labels[:, 1:]
    picked = targets != IGNORE
    logp = torch.log_softmax(out.logits.float(), -1).gather(-1, targets[picked][:, None])[:, 0]
    sums = torch.zeros(labels.shape[0], dtype=logp.dtype, device=logp.device).index_add(0, picked.nonzero()[:, 0], logp)
    return sums, picked.sum(-1), out.aux_loss


@dataclass
class Rollout:
    """Sampled answers: ``group_size`` consecutive rows per prompt (plain data, so it checkpoints safely)."""

    step: int  # the step that drew it
    examples: list[dict[str, Any]]  # the prompts' examples
    answers: list[list[int]]  # answer tokens per row, ``<|im_end|>`` included when the answer ended
    rewards: torch.Tensor  # [prompts, group]
    logp_old: torch.Tensor | None = None  # [prompts * group], GSPO only


class PreferenceTrainer(Trainer):
    """What both preference stages share: prompts from examples, sampling, rewards, micro-batches."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.eos = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def prompt(self, example: dict[str, Any]) -> dict[str, Any]:
        """The example's encoding without its answer: what the policy answers."""
        enc = self.encode(example)
        n = len(enc["ids"]) - sum(label != IGNORE for label in enc["labels"])
        prompt = {k: v for k, v in enc.items() if k != "labels"}
        prompt.update(ids=enc["ids"][:n], modality=enc["modality"][:n])
        return prompt

    def with_answer(self, example: dict[str, Any], answer: list[int]) -> dict[str, Any]:
        """The example's prompt followed by ``answer``, whose tokens (only) are labelled."""
        prompt = self.prompt(example)
        return {**prompt, "ids": prompt["ids"] + answer, "modality": prompt["modality"] + [TEXT] * len(answer),
                "labels": [IGNORE] * len(prompt["ids"]) + answer}

    def sequences(self, rollout: Rollout) -> list[dict[str, Any]]:
        g = self.stage.group_size
        return [self.with_answer(rollout.examples[i // g], a) for i, a in enumerate(rollout.answers)]

    def batch(self, sequences: Sequence[dict[str, Any]]):
        return collate(self.processor, sequences, self._core().config.aux_balance_weight, encode=lambda e: e)

    def sample(self, examples: Sequence[dict[str, Any]], step: int) -> Rollout:
        """``group_size`` answers per example from the current policy, with their rewards."""
        core = self._core()
        prompts = [self.prompt(e) for e in examples for _ in range(self.stage.group_size)]
        generator = torch.Generator(device=next(core.parameters()).device)
        generator.manual_seed(self.seed * 1_000_003 + self.rank * 10_007 + step)
        core.eval()
        out = core.generate_batch(self.processor.collate(prompts), max_new_tokens=self.stage.max_new_tokens,
                                  eos_token_id=[self.eos], temperature=self.stage.temperature, generator=generator)
        self.model.train()
        texts = [self.processor.tokenizer.decode(t, skip_special_tokens=True) for t in out.tokens]
        rewards = [answer_reward(text, examples[i // self.stage.group_size]) for i, text in enumerate(texts)]
        answers = [t + ([self.eos] if reason == "eos" else []) for t, reason in zip(out.tokens, out.finish_reasons)]
        return Rollout(step, list(examples), answers, torch.tensor(rewards).view(len(examples), -1))


class GSPOTrainer(PreferenceTrainer):
    columns = ("loss", "reward", "aux")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.stage.group_size < 2:
            raise ValueError("GSPO normalises rewards within a group: group_size must be >= 2")
        self.rollout: Rollout | None = None

    def _rollout_path(self):
        return self._state_dir() / "rollout.pt"

    def save_state(self, step: int, optimizer, scheduler) -> None:
        """The SFT state, plus the rollout that the rest of its steps still optimise."""
        super().save_state(step, optimizer, scheduler)
        if self.rank == 0 and self.rollout is not None and self.stage.updates_per_rollout > 1:
            torch.save(vars(self.rollout), self._rollout_path())

    def load_state(self, optimizer, scheduler) -> int:
        step = super().load_state(optimizer, scheduler)
        if step % self.stage.updates_per_rollout and self._rollout_path().is_file():
            self.rollout = Rollout(**torch.load(self._rollout_path(), weights_only=True))
        return step

    def micro_losses(self, rows: list[dict[str, Any]]) -> Iterator[tuple[torch.Tensor, dict[str, float]]]:
        step = self._step
        if self.rollout is None or step - self.rollout.step >= self.stage.updates_per_rollout:
            if not rows:
                return
            self.rollout = self.sample(rows, step)
            sequences = self.sequences(self.rollout)
            logp_old = torch.zeros(len(sequences))
            with torch.no_grad():  # the behaviour policy's log-probs, scored the way the update scores them
                for part in self.parts(len(sequences)):
                    logp_old[part] = answer_logprobs(self._core(), self._core(),
                                                     self.batch([sequences[i] for i in part]))[0].cpu()
            self.rollout.logp_old = logp_old
        rollout = self.rollout
        sequences = self.sequences(rollout)
        advantages = group_advantages(rollout.rewards).flatten()
        for part in self.parts(len(sequences)):
            logp, lengths, aux = answer_logprobs(self.model, self._core(), self.batch([sequences[i] for i in part]),
                                                 aux_weights=self.stage.aux)
            loss = gspo_loss(logp, rollout.logp_old[part].to(logp.device), lengths, advantages[part].to(logp.device),
                             clip=self.stage.ratio_clip)
            logs = {"reward": rollout.rewards.mean().item()}
            yield self.with_aux(loss, aux, logs), logs


class DPOTrainer(PreferenceTrainer):
    columns = ("loss", "margin", "pairs", "reward", "aux")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reference = copy.deepcopy(self._core()).eval().requires_grad_(False)  # the model at stage start

    def pairs(self, rollout: Rollout) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(chosen, rejected) per prompt with an incorrect answer: a correct answer, else the gold one."""
        g = self.stage.group_size
        sequences = self.sequences(rollout)
        out = []
        for p, example in enumerate(rollout.examples):
            rewards = rollout.rewards[p].tolist()
            correct = [sequences[p * g + j] for j in range(g) if rewards[j] > 0]
            wrong = [sequences[p * g + j] for j in range(g) if rewards[j] <= 0]
            if wrong:
                out.append((correct[0] if correct else self.encode(example), wrong[0]))
        return out

    def micro_losses(self, rows: list[dict[str, Any]]) -> Iterator[tuple[torch.Tensor, dict[str, float]]]:
        if not rows:
            return
        rollout = self.sample(rows, self._step)
        pairs = self.pairs(rollout)
        logs = {"reward": rollout.rewards.mean().item(), "pairs": float(len(pairs))}
        if not pairs:  # every answer right: nothing to prefer (the trainer still steps, with a zero gradient)
            yield torch.zeros(()), {**logs, "loss": 0.0}
            return
        for part in self.parts(len(pairs)):
            batch = self.batch([pairs[i][0] for i in part] + [pairs[i][1] for i in part])
            with torch.no_grad():
                ref = answer_logprobs(self.reference, self.reference, batch)[0]
            logp, _, aux = answer_logprobs(self.model, self._core(), batch, aux_weights=self.stage.aux)
            n = len(part)
            loss = dpo_loss(logp[:n], logp[n:], ref[:n], ref[n:], beta=self.stage.beta)
            part_logs = {**logs, "margin": ((logp[:n] - ref[:n]) - (logp[n:] - ref[n:])).mean().item()}
            yield self.with_aux(loss, aux, part_logs), part_logs
