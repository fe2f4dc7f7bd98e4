"""``harness merge``: shard runs of one evaluation, merged, equal the unsharded run; anything that is not every
shard of one evaluation exactly once is refused with a line naming the runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.evaluate import evaluate
from harness.merge import MergeRefused, merge_runs
from tests.run_outputs import harness, metrics, only_run, predictions, results


def _run(out: Path, model: str = "unimoe_tiny", **kw) -> Path:
    summary = evaluate("omniworld", model, output_dir=out, progress=False, rebuild_leaderboards=False, **kw)
    return summary.run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("merge")
    made = {"whole": _run(out / "whole", cache=False)}
    for i in range(3):
        made[f"{i}/3"] = _run(out / "shards", shard=f"{i}/3")
    for i in range(3):  # the same shards inferred only (their responses come from the shared cache)
        made[f"infer {i}/3"] = _run(out / "shards", shard=f"{i}/3", stage="infer")
    made["2/3 random"] = _run(out / "other", model="random", shard="2/3")
    return made


def test_merged_shards_equal_the_unsharded_run(runs, tmp_path):
    merged = merge_runs([runs["2/3"], runs["0/3"], runs["1/3"]], tmp_path)
    assert metrics(merged) == metrics(runs["whole"])
    assert predictions(merged) == predictions(runs["whole"])
    record = results(merged)
    assert record["status"] == "complete"
    assert record["config"]["shard"] is None and record["config"]["limit"] is None
    assert record["merged_from"] == [results(runs[f"{i}/3"])["run_id"] for i in range(3)]
    assert record["model"]["fingerprint"] == results(runs["whole"])["model"]["fingerprint"]
    order = [json.loads(line)["doc_id"] for line in (merged / "samples" / "omniworld_audio.jsonl").open()]
    whole = results(runs["whole"])["tasks"]["omniworld_audio"]
    assert len(order) == whole["n_docs"] == record["tasks"]["omniworld_audio"]["n_docs"]


def test_shards_that_only_inferred_are_scored_by_the_merge(runs, tmp_path):
    assert {results(runs[f"infer {i}/3"])["status"] for i in range(3)} == {"inferred"}
    merged = merge_runs([runs[f"infer {i}/3"] for i in range(3)], tmp_path)
    assert results(merged)["status"] == "complete"
    assert metrics(merged) == metrics(runs["whole"])
    assert predictions(merged) == predictions(runs["whole"])


@pytest.mark.parametrize("pick, message", [
    (("0/3", "1/3"), "shard 2/3 missing"),
    (("0/3", "1/3", "1/3", "2/3"), "shard 1/3 given twice"),
    (("0/3", "1/3", "2/3 random"), "model differs"),
    (("whole", "0/3"), "is not a shard run"),
])
def test_refused(runs, tmp_path, pick, message):
    with pytest.raises(MergeRefused, match=message):
        merge_runs([runs[p] for p in pick], tmp_path)
    assert not (tmp_path / "runs").exists()  # nothing written


def test_unfinished_or_changed_shards_are_refused(runs, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(runs["1/3"], broken)
    record = results(broken)
    (broken / "results.json").write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(MergeRefused, match=f"run {record['run_id']} did not finish"):
        merge_runs([runs["0/3"], broken, runs["2/3"]], tmp_path)
    record["tasks"]["omniworld_text"]["task_hash"] = "0" * 16
    (broken / "results.json").write_text(json.dumps(record))
    with pytest.raises(MergeRefused, match="task omniworld_text differs"):
        merge_runs([runs["0/3"], broken, runs["2/3"]], tmp_path)


def test_cli_merges_and_refuses_in_one_line(runs, tmp_path, capsys):
    shards = ",".join(str(runs[f"{i}/3"]) for i in range(3))
    assert main(["merge", f"runs={shards}", f"output_dir={tmp_path}"]) == 0
    assert "omniworld_video" in capsys.readouterr().out
    assert (tmp_path / "leaderboards").is_dir()
    refused = harness("merge", f"runs={runs['0/3']},{runs['2/3']}", f"output_dir={tmp_path / 'no'}")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == ["merge refused: shard 1/3 missing (got 2 of 3 shards)"]


def test_judged_shards_merge_through_the_same_judge_config_as_run(tmp_path, capsys):
    from harness.models.reference import OracleModel
    from tests.judges.fake_endpoint import FakeServer
    from tests.tasks.test_charxiv import grade_reasoning

    with FakeServer() as server:
        server.reply = grade_reasoning
        judge = {"kind": "openai", "base_url": server.url, "model": "fake-gpt", "prompt": "charxiv_reasoning",
                 "policy": {"backoff_s": 0}}

        def run(out: Path, **kw) -> Path:
            return evaluate("charxiv_reasoning", OracleModel(), data="sample", cache=False, output_dir=out,
                            judge=judge, rebuild_leaderboards=False, **kw).run_dir

        whole = run(tmp_path / "whole")
        shards = ",".join(str(run(tmp_path / "shards", shard=f"{i}/2")) for i in range(2))
        args = ["merge", f"runs={shards}", f"output_dir={tmp_path / 'merged'}"]
        capsys.readouterr()
        assert main(args) == 2  # judged in the shards, no judge given: refused, nothing written
        assert capsys.readouterr().err.strip().splitlines() == [
            "merge refused: task charxiv_reasoning was scored by a judge (fake-gpt) in the shards: pass "
            "judge=<judge config> (as the shards' run did) to score the merge the same way"]
        assert not (tmp_path / "merged").exists()
        calls = server.calls
        assert main([*args, "judge=gpt4o_charxiv", f"judge.base_url={server.url}", "judge.model=fake-gpt",
                     "judge.api_key_env=null"]) == 0
        assert server.calls > calls  # the merge graded the answers itself
    merged = only_run(tmp_path / "merged")
    assert metrics(merged) == metrics(whole) and metrics(whole)["charxiv_reasoning"]
    assert predictions(merged) == predictions(whole)
    assert results(merged)["tasks"]["charxiv_reasoning"]["judge"]["model"] == "fake-gpt"
