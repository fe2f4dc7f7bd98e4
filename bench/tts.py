"""Speech output speed: real-time factor (synthesis seconds / audio seconds) of MoE-TTS + WavTokenizer.

Two pairs: the tiny pair shipped with ``unimoe_tiny`` (its trained folder when present, else the same
architecture untrained) and the full-size released geometry (MoE-TTS "1.2B-A0.7B" with its 151,936 x 2,048
embedding copy, WavTokenizer 24 kHz) with random weights. Each runs our generation (static KV cache) and the
released loop (the whole sequence recomputed at every step, ``LLM2TTSCodecAR.infer``) on the same weights and
prompt, each forced to produce exactly ``--codes`` codes (no eos), so the work is equal; the ratio is printed.

    python bench/tts.py [--codes 80] [--full-codes 8] [--device cpu|cuda] [--skip-full]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unimoe.tts import moe_tts, wavtokenizer
from unimoe.tts.checkpoint import load_speech_head
from unimoe.tts.moe_tts import MoETTS
from unimoe.tts.wavtokenizer import WavTokenizer

TINY_HEAD = Path(__file__).resolve().parent.parent / "unimoe" / "weights" / "unimoe_tiny_tts"


def no_eos(model: MoETTS) -> None:
    """Makes eos unreachable so both loops generate the requested number of codes."""
    with torch.no_grad():
        model.out_fnn.bias[model.specials.eos] = -1e4


def cached(model: MoETTS, text: torch.Tensor, n: int) -> torch.Tensor:
    return model.generate(text, max_tokens=n)


@torch.inference_mode()
def recomputed(model: MoETTS, text: torch.Tensor, n: int) -> torch.Tensor:
    cond = model.condition(text)
    seq: list[int] = []
    for _ in range(n):
        h = torch.cat([cond, model.audio_embedding(torch.tensor(seq, dtype=torch.long, device=text.device))])
        seq.append(int(model.decode(h[None])[0][0, -1].argmax()))
    return torch.tensor(seq) % model.config.odim


def timed(fn, device: str) -> tuple[float, object]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def rtf(name: str, model: MoETTS, codec: WavTokenizer, n: int, device: str) -> None:
    text = torch.arange(100, 116, device=device)  # 16 text tokens: one segment of the cookbook's maxcutlen
    seconds = n / codec.config.codes_per_second
    cached(model, text, 2)  # warm-up
    ours, codes = timed(lambda: cached(model, text, n), device)
    released, _ = timed(lambda: recomputed(model, text, n), device)
    with torch.inference_mode():
        decode, wave = timed(lambda: codec.decode(codes[None].to(device)), device)
    assert wave.shape[-1] == n * codec.config.hop_length
    print(f"{name:<22} {n:>5} codes = {seconds:5.2f} s audio | MoE-TTS ours {ours:7.2f} s (RTF {ours / seconds:6.3f}), "
          f"released loop {released:7.2f} s (RTF {released / seconds:6.3f}), ratio {released / ours:5.2f}x | "
          f"codec {decode:6.3f} s (RTF {decode / seconds:6.4f}) | total RTF {(ours + decode) / seconds:6.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=80)
    parser.add_argument("--full-codes", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    if (TINY_HEAD / "tts_config.json").is_file():
        model, codec, label = *load_speech_head(TINY_HEAD), "tiny (trained)"
    else:
        model = MoETTS(moe_tts.preset("tiny"))
        codec, label = WavTokenizer(wavtokenizer.preset("tiny")), "tiny (untrained)"
    model, codec = model.to(args.device).eval(), codec.to(args.device).eval()
    no_eos(model)
    rtf(label, model, codec, args.codes, args.device)
    if not args.skip_full:
        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
        model = MoETTS(moe_tts.preset("released")).to(args.device, dtype).eval()
        codec = WavTokenizer(wavtokenizer.preset("released")).to(args.device).eval()
        no_eos(model)
        rtf(f"full size ({str(dtype).removeprefix('torch.')})", model, codec, args.full_codes, args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
