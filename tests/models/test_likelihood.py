"""loglikelihood (lm-eval semantics) on the hf and unimoe adapters, and the `scoring: likelihood` task option."""

from __future__ import annotations

import pytest
import torch
import yaml

from harness.api import LoglikelihoodRequest
from harness.catalog import CONFIG_DIR
from harness.evaluate import evaluate
from harness.models import build_model
from harness.models.likelihood import encode_pair

REQUESTS = [
    LoglikelihoodRequest("The capital of France is", " Paris"),
    LoglikelihoodRequest("The capital of France is", " Rome"),  # one-token options of one context share a row
    LoglikelihoodRequest("Question: 2 + 2 = ?\nAnswer: ", "4"),  # trailing space moves to the continuation
    LoglikelihoodRequest("", "Hello world"),  # empty context: scored after the prefix token
    LoglikelihoodRequest("A much longer context, so that the batch holds padding for the shorter rows.", " B"),
]


def plain_forward(forward, encode, prefix_id, request):
    """log P(continuation | context) from one unpadded forward pass, token by token."""
    context, continuation = encode_pair(encode, request.context, request.continuation, prefix_id)
    ids = torch.tensor([context + continuation])
    with torch.inference_mode():
        logprobs = torch.log_softmax(forward(ids).float(), -1)[0]
    total, greedy = 0.0, True
    for k, token in enumerate(continuation):
        row = logprobs[len(context) + k - 1]
        total += float(row[token])
        greedy &= int(row.argmax()) == token
    return total, greedy


def test_encode_pair_follows_lm_eval():
    encode = lambda s: [ord(c) for c in s]
    assert encode_pair(encode, "ab ", "c", 0) == ([97, 98], [32, 99])
    assert encode_pair(encode, "", "c", 7) == ([7], [99])


def test_hf_loglikelihood_equals_a_plain_forward_pass(tiny_qwen2):
    model = build_model({"name": "tiny", "adapter": "hf", "args": {"path": str(tiny_qwen2), "likelihood_batch_size": 3}})
    got = model.loglikelihood(REQUESTS)
    lm, tok = model.loaded.model, model.loaded.tokenizer
    encode = lambda s: tok.encode(s, add_special_tokens=False)
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    for request, (logprob, greedy) in zip(REQUESTS, got):
        want = plain_forward(lambda ids: lm(input_ids=ids).logits, encode, prefix, request)
        assert logprob == pytest.approx(want[0], abs=1e-4) and greedy == want[1]


def test_unimoe_loglikelihood_equals_a_plain_forward_pass():
    from unimoe.tokenizer import SPECIAL_IDS

    model = build_model({"name": "unimoe_tiny", "adapter": "unimoe", "args": {"init": "random", "seed": 0}})
    got = model.loglikelihood(REQUESTS)
    lm, tok = model._model, model._processor.tokenizer
    encode = lambda s: tok.encode(s, add_special_tokens=False)
    for request, (logprob, greedy) in zip(REQUESTS, got):
        want = plain_forward(lambda ids: lm(input_ids=ids).logits, encode, SPECIAL_IDS["<|endoftext|>"], request)
        assert logprob == pytest.approx(want[0], abs=1e-4) and greedy == want[1]


def test_likelihood_scoring_picks_the_most_likely_option(tiny_qwen2, tmp_path):
    task = yaml.safe_load((CONFIG_DIR / "task" / "mmlu_pro.yaml").read_text()) | {"scoring": "likelihood"}
    model = build_model({"name": "tiny", "adapter": "hf", "args": {"path": str(tiny_qwen2)}})
    summary = evaluate(task, model, output_dir=tmp_path, limit=3, batch_size=3, rebuild_leaderboards=False)
    outcome = summary.outcomes[0]
    assert outcome.n_errors == 0 and summary.results["tasks"]["mmlu_pro"]["metrics"]["accuracy"]["n"] == 3
    requests = {r.doc_id: r for r in map(outcome.task.build_request, outcome.task.docs())}
    for sample in outcome.samples:
        request = requests[sample.doc_id]
        scores = model.loglikelihood([LoglikelihoodRequest(request.text(), " " + c) for c in request.choices])
        best = max(range(len(scores)), key=lambda i: scores[i][0])
        assert sample.prediction == request.choices[best]
        assert sample.items["accuracy"] == float(sample.prediction == sample.target)


def test_unknown_scoring_mode_is_refused():
    task = yaml.safe_load((CONFIG_DIR / "task" / "mmlu_pro.yaml").read_text()) | {"scoring": "likelyhood"}
    with pytest.raises(ValueError, match="scoring must be one of"):
        evaluate(task, "random", output_dir="unused", rebuild_leaderboards=False)
