"""Issue 11, class 1: every bad configuration value is refused before any work, in one line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import ConfigError
from harness.evaluate import evaluate
from harness.schema import parse_limit, parse_shard
from tests.cli_probe import assert_untouched, assert_user_error, harness, snapshot


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """An output folder holding one finished run, which no refused command may touch."""
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "task=gpqa_diamond", "model=random", f"output_dir={out}", "progress=false"]) == 0
    return out


BAD_VALUES = [
    ("shard=5/3", "shard='5/3'"),
    ("shard=a/b", "shard='a/b'"),
    ("batch_size=0", "batch_size=0"),
    ("batch_size=abc", "batch_size=abc"),
    ("limit=-3", "limit=-3"),
    ("limit=1.5", "limit=1.5"),
    ("limit=0", "limit=0"),
    ("seed=-1", "seed=-1"),
    ("stage=bogus", "expected one of [all, infer]"),
    ("data=bogus", "expected one of [sample, full]"),
    ("cache=maybe", "not a valid bool"),
    ("limt=3", "limt"),
    ("model=bogus", "unknown model 'bogus'; known: "),  # then the configs/model/ names, sorted
    ("task=bogus", "unknown task 'bogus'"),
    ("model=../task/videomme", "no '/' or '..'"),
    ("task=fixtures/x", "no '/' or '..'"),
    ("judge=..", "no '/' or '..'"),
    ("data_dir=/nonexistent/benchmark", "data_dir='/nonexistent/benchmark' does not exist"),
]


@pytest.mark.parametrize("override,fragment", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_value_is_refused_in_one_line_and_touches_nothing(results_dir, override, fragment):
    before = snapshot(results_dir)
    proc = harness("run", "task=gpqa_diamond", "model=random", f"output_dir={results_dir}", "progress=false", override)
    assert_user_error(proc, fragment)
    assert_untouched(before, results_dir)


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("precious\n")
    proc = harness("run", "task=gpqa_diamond", f"output_dir={target}")
    assert_user_error(proc, "output_dir=", "is a file")
    assert target.read_text() == "precious\n"


def test_a_sweep_with_one_bad_job_runs_none(results_dir):
    before = snapshot(results_dir)
    proc = harness("run", "-m", "task=gpqa_diamond", "model=random,bogus", f"output_dir={results_dir}",
                   "progress=false")
    assert_user_error(proc, "unknown model 'bogus'")
    assert_untouched(before, results_dir)


@pytest.mark.parametrize("spelling,enabled", [("no", False), ("off", False), ("'false'", False), ("0", False),
                                              ("yes", True), ("True", True)])
def test_cache_switch_accepts_every_boolean_spelling(tmp_path, spelling, enabled):
    assert main(["run", "task=gpqa_diamond", "model=random", f"output_dir={tmp_path}", "progress=false",
                 "limit=1", f"cache={spelling}"]) == 0
    (results,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/results.json")]
    assert results["config"]["cache"] is enabled
    assert (tmp_path / "cache").exists() is enabled


def test_recorded_config_keeps_the_values_given(tmp_path):
    assert main(["run", "task=gpqa_diamond", "model=random", f"output_dir={tmp_path}", "progress=false",
                 "limit=2", "shard=0/2", "stage=infer"]) == 0
    (config,) = [yaml.safe_load(p.read_text()) for p in (tmp_path / "runs").glob("*/config.yaml")]
    assert (config["limit"], config["shard"], config["stage"], config["data"]) == (2, "0/2", "infer", "sample")


def test_python_api_applies_the_same_checks(tmp_path):
    for bad in ({"limit": -3}, {"batch_size": 0}, {"shard": "3/3"}, {"stage": "bogus"}, {"data": "bogus"}):
        with pytest.raises(ConfigError):
            evaluate("gpqa_diamond", "random", output_dir=tmp_path, **bad)
    assert not (tmp_path / "runs").exists()


def test_value_parsers():
    assert parse_shard(None) is None and parse_shard("1/4") == (1, 4)
    assert parse_limit(None) is None and parse_limit(3) == 3 and parse_limit("3") == 3 and parse_limit(0.25) == 0.25
    for bad in ("1/0", "-1/2", "1/-2", "2", "1/2/3", "a/2"):
        with pytest.raises(ConfigError, match="shard"):
            parse_shard(bad)
    for bad in (-3, 0, 1.5, "x", True, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="limit"):
            parse_limit(bad)


def test_names_never_reach_outside_their_config_folder(tmp_path):
    from harness.catalog import load_entry

    with pytest.raises(ConfigError, match="no '/' or '..'"):
        load_entry("../model/random")  # also what a group file's member list goes through
    with pytest.raises(ConfigError, match="no '/' or '..'"):
        evaluate("gpqa_diamond", "../task/gpqa_diamond", output_dir=tmp_path)
