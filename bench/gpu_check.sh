#!/usr/bin/env bash
# The GPU checks of the inference path, in one call on one CUDA GPU (sized for under 8 minutes on an H200):
#
#   bash bench/gpu_check.sh [OUT_DIR [DECODE]]   # OUT_DIR default: $OUT if set, else bench/out/gpu_check
#
# DECODE is our decode path in both phases: compiled-layer (default: one compiled graph shared by the 28 layers,
# compiles about as fast as one layer) or compiled (the whole step as one graph: fewest launches, but on the
# CPU its compile time grew with the layer count, 428 s for 28 tiny layers on two busy cores, so it may not fit).
#
# 1. bench/full_size.py: the full unimoe2_omni language model (28 layers, 26 B parameters, bf16, random weights):
#    a 4,096-token prefill against a dense bf16 GEMM measured in the same run; the compiled static-shape decode
#    step (unimoe.decode, CUDA graphs) at batch 1 against the bandwidth floor (measured active parameters read
#    once per step at the measured device copy bandwidth); peak memory per phase.       -> full_size.json
# 2. bench/generate.py --full-width: our compiled decode against transformers' Qwen2-MoE of equal dimensions
#    (top-2 of 4 routed experts + one shared expert, 28 layers), batch 1 and 16, same process. -> vs_qwen2moe.json
# 3. If time is left: `harness run task=omniworld model=unimoe_tiny` on the GPU with model.args.decode=eager and
#    =compiled-layer, then `harness compare` of the two runs at tolerance 0 (the adapter's decode path end to end).
# 4. gpu_check.json: both reports, and each goal with its measured value and whether it was met:
#    decode <= 10 ms/step and >= 60% of the floor; >= 2x Qwen2-MoE at batch 1 and 16; prefill >= 65% of the GEMM.
# Everything printed also goes to gpu_check.log. Each phase is bounded by `timeout`; the scripts rewrite their
# JSON after every measurement, so a phase cut short still reports what it measured. Exit 1 if a phase failed.
set -u -o pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-bench/out/gpu_check}}
decode=${2:-compiled-layer}
python=${PYTHON:-python}
mkdir -p "$out"
log="$out/gpu_check.log"
: > "$log"
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

say "gpu_check: $(git rev-parse --short HEAD 2>/dev/null || echo 'no git'), decode $decode, output in $out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$log"
"$python" -c "import torch, transformers; assert torch.cuda.is_available(), 'no CUDA device';
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__,
      torch.cuda.get_device_name())" 2>&1 | tee -a "$log" || { say "no usable CUDA device"; exit 1; }

status=0
say "1/3 full size: prefill 4096, compiled decode at batch 1, device rates"
timeout 220 "$python" bench/full_size.py --device cuda --dtype bf16 --prefill 4096 --prompt 128 --new-tokens 64 \
    --repeats 3 --decode "$decode" --device-rates --out "$out/full_size.json" 2>&1 | tee -a "$log" || status=1
say "2/3 against transformers' Qwen2-MoE of equal dimensions, batch 1 and 16"
timeout 240 "$python" bench/generate.py --device cuda --dtype bf16 --full-width --batch 1,16 --prompt 128 \
    --new-tokens 32 --repeats 2 --decode "$decode" --out "$out/vs_qwen2moe.json" 2>&1 | tee -a "$log" || status=1
if (( SECONDS < 380 )); then  # only in the time left: the whole script stays under 8 minutes
    say "3/3 the harness on the GPU: omniworld on unimoe_tiny, model.args.decode=compiled-layer against eager"
    for mode in eager compiled-layer; do
        timeout $(( (470 - SECONDS) / 2 )) "$python" -m harness run task=omniworld model=unimoe_tiny data=full \
            model.args.device=cuda model.args.decode=$mode batch_size=16 cache=false progress=false \
            output_dir="$out/harness_$mode" 2>&1 | tail -n 3 | tee -a "$log" || status=1
    done
    "$python" -m harness compare baseline="$(ls -d "$out"/harness_eager/runs/*/ | tail -n 1)" \
        candidate="$(ls -d "$out"/harness_compiled-layer/runs/*/ | tail -n 1)" tolerance=0 2>&1 | tail -n 5 | tee -a "$log" \
        || status=1
else
    say "3/3 skipped: no time left for the harness run on the GPU"
fi

"$python" - "$out" <<'PY' 2>&1 | tee -a "$log"
import json, sys, time
from pathlib import Path

out = Path(sys.argv[1])
def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None

full, versus = load("full_size.json"), load("vs_qwen2moe.json")
g = (full or {}).get("goals", {})
goals = [
    ("decode batch 1 ms/step <= 10", g.get("decode_step_ms"), lambda v: v <= 10),
    ("decode batch 1 fraction of the bandwidth floor >= 0.60", g.get("decode_fraction_of_floor"), lambda v: v >= 0.6),
    ("prefill 4096 fraction of the dense GEMM rate >= 0.65", g.get("prefill_fraction_of_gemm"), lambda v: v >= 0.65),
]
for row in (versus or {}).get("rows", []):
    goals.append((f"batch {row['batch']} tokens/s ours / Qwen2-MoE >= 2", row["ratio"], lambda v: v >= 2))
versus_eager = (full or {}).get("decode_vs_eager") or {}
goals.append(("decode speed-up over the eager path in the same run > 1", versus_eager.get("speedup"), lambda v: v > 1))
memory = {phase: (full or {}).get(phase, {}).get("memory", {}).get("peak_allocated_mib") for phase in ("prefill", "generate")}
for row in (versus or {}).get("rows", []):
    label = f"generate batch {row['batch']} ({versus['config']['layers']} layers, top-2)"
    memory[label] = row.get("ours_peak_allocated_gib") and 1024 * row["ours_peak_allocated_gib"]
summary = {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
           "device": (full or {}).get("environment", {}).get("device_name"),
           "goals": [{"goal": name, "value": value, "met": None if value is None else bool(test(value))}
                     for name, value, test in goals],
           "greedy_tokens_equal_to_eager": versus_eager and f"{versus_eager['equal_leading_tokens']}/{versus_eager['tokens']}",
           "peak_allocated_mib_by_phase": memory, "full_size": full, "vs_qwen2moe": versus}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
for goal in summary["goals"]:
    value = "not measured" if goal["value"] is None else f"{goal['value']:.3g}"
    print(f"{'MET ' if goal['met'] else 'MISS' if goal['met'] is False else '----'} {goal['goal']}: {value}")
print("greedy tokens equal to the eager path:", summary["greedy_tokens_equal_to_eager"] or "not measured")
print("peak allocated MiB by phase:", {k: None if v is None else round(v) for k, v in memory.items()})
print(f"wrote {out / 'gpu_check.json'}")
PY
say "done (status $status)"
exit $status
