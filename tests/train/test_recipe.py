"""The recipe end to end at toy length, through the command line, and its resume across stages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unimoe.checkpoint import from_pretrained
from unimoe.omni import UniMoEOmni
from unimoe.train.__main__ import main


def test_recipe_runs_every_stage_and_resumes(tmp_path, capsys):
    args = ["recipe=unimoe_tiny", f"out_dir={tmp_path}", "data.n_per_modality=2", "data.modalities=[image,text]",
            *[f"stage.{s}.steps=2" for s in ("alignment", "warmup", "moe", "anneal")],
            *[f"stage.{s}.batch_size=2" for s in ("alignment", "warmup", "moe", "anneal")]]
    assert main([*args, f"export_dir={tmp_path / 'export'}"]) == 0
    for stage in ("alignment", "warmup", "upcycle", "moe", "anneal"):
        assert (tmp_path / stage / "model" / "config.json").is_file()
    shipped = tmp_path / "export"
    assert (shipped / "training" / "recipe.yaml").is_file() and (shipped / "training" / "moe-log.csv").is_file()
    assert {t.dtype for t in load_file(str(next(shipped.glob("*.safetensors")))).values()} == {torch.bfloat16}
    exported = from_pretrained(shipped, model_class=UniMoEOmni)
    final = from_pretrained(tmp_path / "anneal" / "model", model_class=UniMoEOmni)
    for (name, a), b in zip(exported.state_dict().items(), final.state_dict().values()):
        assert torch.equal(a, b.to(torch.bfloat16).to(a.dtype)), name
    # the shipped (bf16) weights are a valid start for further training, e.g. the preference stages
    assert main([*args, f"out_dir={tmp_path / 'more'}", f"init_from={shipped}", "stages=[anneal]"]) == 0
    log = (tmp_path / "moe" / "log.csv").read_text()
    assert log.count("\n") == 3 and "nan" not in log
    assert main(args) == 0  # everything done: every stage is loaded, none retrained
    assert capsys.readouterr().out.count("done earlier") == 5


@pytest.mark.slow
def test_recipe_under_torchrun_with_two_gloo_processes(tmp_path):
    import os
    import subprocess
    import sys

    # --standalone: a free rendezvous port, not the fixed 29500 that a second torchrun on the machine holds
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "unimoe.train", "recipe=unimoe_tiny", f"out_dir={tmp_path}", "data.n_per_modality=2", "data.modalities=[image,text]",
           *[f"stage.{s}.steps=2" for s in ("alignment", "warmup", "moe", "anneal")],
           *[f"stage.{s}.batch_size=4" for s in ("alignment", "warmup", "moe", "anneal")]]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "anneal" / "model" / "config.json").is_file()
    assert "nan" not in (tmp_path / "moe" / "log.csv").read_text()


def test_ablation_sweep_is_a_hydra_multirun_from_a_shared_warmup(tmp_path):
    from unimoe.config import UniMoEConfig

    toy = ["data.n_per_modality=2", "data.modalities=[image,text]",
           *[f"stage.{s}.steps=2" for s in ("alignment", "warmup", "moe", "anneal")],
           *[f"stage.{s}.batch_size=2" for s in ("alignment", "warmup", "moe", "anneal")]]
    assert main(["recipe=unimoe_tiny", f"out_dir={tmp_path / 'main'}", *toy]) == 0
    assert main(["-m", "recipe=unimoe_tiny_ablation", "ablation=top_k,no_null", *toy,
                 f"init_from={tmp_path / 'main' / 'warmup' / 'model'}", f"data.root={tmp_path / 'main' / 'data'}",
                 f"out_dir={tmp_path / 'abl'}/${{ablation.name}}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 0
    top_k = UniMoEConfig.from_json(tmp_path / "abl" / "top_k" / "anneal" / "model" / "config.json")
    no_null = UniMoEConfig.from_json(tmp_path / "abl" / "no_null" / "anneal" / "model" / "config.json")
    assert (top_k.mlp_dynamic_top_p, top_k.mlp_dynamic_top_k, top_k.mlp_dynamic_null_expert_num) == (0.0, 2, 1)
    assert no_null.mlp_dynamic_null_expert_num == 0 and no_null.mlp_dynamic_top_p == 0.7
    assert not (tmp_path / "abl" / "top_k" / "warmup").exists()  # the dense stages are shared, not rerun
    assert not (tmp_path / "abl" / "top_k" / "data").exists()  # and so is the generated training split
