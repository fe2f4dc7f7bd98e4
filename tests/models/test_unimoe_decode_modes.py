"""`model.args.decode=static|compiled` on the unimoe adapter: the fixed-shape decode step (unimoe.decode) gives a
batched omniworld run the eager path's answers, scores and routing statistics, and is refused for v1 models."""

from __future__ import annotations

import pytest

from harness.evaluate import _model_config, evaluate
from harness.models import build_model
from tests.serve.test_round_trip import assert_same_samples, per_sample

pytestmark = pytest.mark.slow
LIMIT = 4


def tiny(decode: str) -> dict:
    config = _model_config("unimoe_tiny")
    return {**config, "args": {**config["args"], "decode": decode}}


@pytest.fixture(scope="module")
def eager(tmp_path_factory):
    return evaluate("omniworld", tiny("eager"), limit=LIMIT, batch_size=LIMIT, cache=False,
                    output_dir=tmp_path_factory.mktemp("eager"), rebuild_leaderboards=False)


@pytest.mark.parametrize("decode", ["static", "compiled-layer"])
def test_decode_modes_give_the_eager_answers_and_routing(eager, decode, tmp_path):
    run = evaluate("omniworld", tiny(decode), limit=LIMIT, batch_size=LIMIT, cache=False, output_dir=tmp_path,
                   rebuild_leaderboards=False)
    assert run.exit_code == 0
    got, expected = per_sample(run.run_dir), per_sample(eager.run_dir)
    assert len(got) == 6 * LIMIT
    assert_same_samples(got, expected)
    for task, record in run.results["tasks"].items():
        assert record["metrics"] == eager.results["tasks"][task]["metrics"], task
    assert run.results["model"]["fingerprint"] == eager.results["model"]["fingerprint"]  # one identity, one cache


def test_a_typo_and_a_v1_model_are_refused_with_one_line():
    with pytest.raises(ValueError, match="decode must be one of"):
        build_model(tiny("fast"))
    v1 = tiny("static")
    v1["args"] = {**v1["args"], "init": "random", "preset": "tiny_v1"}
    adapter = build_model(v1)
    with pytest.raises(ValueError, match="decode=static needs Uni-MoE-2 routing"):
        adapter.load()
