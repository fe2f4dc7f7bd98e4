"""The recipe end to end at toy length, through the command line, and its resume across stages."""

from __future__ import annotations

from pathlib import Path

from unimoe.train.__main__ import main


def test_recipe_runs_every_stage_and_resumes(tmp_path, capsys):
    args = ["recipe=unimoe_tiny", f"out_dir={tmp_path}", "data.n_per_modality=2", "data.modalities=[image,text]",
            *[f"stage.{s}.steps=2" for s in ("alignment", "warmup", "moe", "anneal")],
            *[f"stage.{s}.batch_size=2" for s in ("alignment", "warmup", "moe", "anneal")]]
    assert main(args) == 0
    for stage in ("alignment", "warmup", "upcycle", "moe", "anneal"):
        assert (tmp_path / stage / "model" / "config.json").is_file()
    assert (tmp_path / "moe" / "log.csv").read_text().count("\n") == 3
    assert main(args) == 0  # everything done: every stage is loaded, none retrained
    assert capsys.readouterr().out.count("done earlier") == 5
