"""Trains the tiny speech head of ``unimoe_tiny`` (WavTokenizer codec + MoE-TTS) on synthetic speech.

    python -m unimoe.train.tts [out_dir=runs/train/unimoe_tiny_tts] [export_dir=unimoe/weights/unimoe_tiny_tts]
                               [phrases=3420] [codec_steps=...] [decoder_steps=...] [tts_steps=...] [seed=0]

Stages, each skipped when its output exists and resumed at its last saved step when interrupted:

1. ``data``: the first ``phrases`` training phrases (:func:`unimoe.train.tts_phrases.train_phrases`, never the
   held-out ones omniworld asks for) spoken by the hibari neural TTS (24 kHz);
2. ``codec``: the codec as an autoencoder on multi-resolution STFT magnitude losses (no GAN), then k-means of
   the encoder's frames into the codebook, then the decoder fine-tuned on quantised frames;
3. ``tts``: the clips encoded to codes; MoE-TTS trained teacher-forced on (phrase ids -> codes + eos), a
   ``prefix_rate`` share conditioned on a previous segment's last codes (see :func:`train_tts`);
4. export: the pair written in the released layouts (:func:`unimoe.tts.checkpoint.save_speech_head`).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unimoe.train.tts_phrases import train_phrases
from unimoe.tts import moe_tts, wavtokenizer
from unimoe.tts.checkpoint import save_speech_head
from unimoe.tts.moe_tts import MoETTS
from unimoe.tts.wavtokenizer import WavTokenizer

DEFAULTS: dict[str, Any] = dict(
    out_dir="runs/train/unimoe_tiny_tts", export_dir=None, seed=0, phrases=3420, codec_steps=8000,
    decoder_steps=2000, tts_steps=3000, tts_batch=16, prefix_rate=0.3, tune_text_embedding=1, codes_used=512,
    batch=4, crop_seconds=0.6, lm="unimoe/weights/unimoe_tiny", save_every=100)
STFT_SCALES = ((1024, 256), (512, 128))


def phrase_ids(tokenizer, phrase: str) -> list[int]:
    """A phrase as the language model writes it in a speech span: the text closed by a full stop."""
    return tokenizer.encode(phrase.strip() + ".", add_special_tokens=False)


# ------------------------------------------------------------------------------------------------------
# stage 1: data


def synthesize(folder: Path, phrases: tuple[str, ...], log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Each phrase spoken once by the hibari voice (24 kHz), written as 16-bit WAV with a manifest."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        rows = json.loads(manifest.read_text())
        if [r["text"] for r in rows] == list(phrases):
            return rows
    import soundfile as sf
    from hibari import SAMPLE_RATE, Hibari

    folder.mkdir(parents=True, exist_ok=True)
    voice, rows = Hibari(), []
    for p, phrase in enumerate(phrases):
        path = folder / f"{p:04d}.wav"
        sf.write(path, voice(phrase + ".", seed=0), SAMPLE_RATE, subtype="PCM_16")
        rows.append({"text": phrase, "wav": path.name})
    log(f"[data] {len(rows)} clips")
    manifest.write_text(json.dumps(rows, indent=1))
    return rows


def load_clips(folder: Path, rows: list[dict[str, Any]], hop: int) -> list[torch.Tensor]:
    import soundfile as sf

    clips = []
    for row in rows:
        wav, _ = sf.read(folder / row["wav"], dtype="float32")
        wav = np.pad(wav, (0, (-len(wav)) % hop))
        clips.append(torch.from_numpy(wav))
    return clips


# ------------------------------------------------------------------------------------------------------
# stage 2: codec


def stft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution log-magnitude L1 plus spectral convergence (the usual no-GAN vocoder objective)."""
    loss = pred.new_zeros(())
    for n_fft, hop in STFT_SCALES:
        window = torch.hann_window(n_fft, device=pred.device)
        p, t = (torch.stft(x, n_fft, hop, window=window, return_complex=True).abs() for x in (pred, target))
        loss = loss + F.l1_loss(torch.log(p + 1e-5), torch.log(t + 1e-5))
        loss = loss + torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp_min(1e-5)
    return loss / len(STFT_SCALES)


def crops(clips: list[torch.Tensor], n: int, length: int, rng: random.Random) -> torch.Tensor:
    out = []
    for _ in range(n):
        clip = clips[rng.randrange(len(clips))]
        if len(clip) <= length:
            out.append(F.pad(clip, (0, length - len(clip))))
        else:
            start = rng.randrange(0, (len(clip) - length) // 600 + 1) * 600
            out.append(clip[start:start + length])
    return torch.stack(out)


def kmeans(x: torch.Tensor, k: int, iters: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(1)
        for j in range(len(centres)):
            members = x[assign == j]
            if len(members):
                centres[j] = members.mean(0)
    return centres


def clock() -> tuple[float, float]:
    return time.time(), time.process_time()


def since(start: tuple[float, float]) -> str:
    """Wall and CPU seconds since ``start``: on a shared machine the CPU time is what the stage costs."""
    wall, cpu = clock()
    return f"{wall - start[0]:.0f} s, cpu {cpu - start[1]:.0f} s"


class Resumable:
    """A training loop's model + optimizer + step saved every ``every`` steps in ``path`` (weights only)."""

    def __init__(self, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, every: int):
        self.path, self.model, self.optimizer, self.every = path, model, optimizer, every

    def start(self) -> int:
        if not self.path.is_file():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])

    def maybe_save(self, step: int, last: bool = False) -> None:
        if step % self.every == 0 or last:
            tmp = self.path.with_suffix(".tmp")
            torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": step}, tmp)
            tmp.replace(self.path)


def train_codec(out: Path, clips: list[torch.Tensor], cfg: dict[str, Any], log: Callable[[str], None]) -> WavTokenizer:
    done = out / "codec.pt"
    codec = WavTokenizer(wavtokenizer.preset("tiny"))
    if done.is_file():
        codec.load_state_dict(torch.load(done, map_location="cpu", weights_only=True))
        return codec
    hop = codec.config.hop_length
    length = int(cfg["crop_seconds"] * codec.sample_rate) // hop * hop
    rng = random.Random(cfg["seed"])

    def loop(name: str, params, steps: int, features: Callable[[torch.Tensor], torch.Tensor]) -> None:
        optimizer = torch.optim.AdamW(params, lr=2e-3, betas=(0.8, 0.99))
        run = Resumable(out / f"{name}_state.pt", codec, optimizer, cfg["save_every"])
        first = run.start()
        started = clock()
        for step in range(first + 1, steps + 1):
            target = crops(clips, cfg["batch"], length, rng)
            loss = stft_loss(codec.decode_features(features(target)), target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(codec.parameters(), 1.0)
            optimizer.step()
            if step % 50 == 0 or step == steps:
                log(f"[{name}] step {step}/{steps} loss {loss.item():.3f} ({since(started)})")
            run.maybe_save(step, last=step == steps)

    encoder = codec.feature_extractor.encodec.encoder
    loop("codec", codec.parameters(), cfg["codec_steps"], codec.encode_features)
    with torch.no_grad():  # the codebook: k-means over every frame of every clip
        frames = torch.cat([codec.encode_features(c[None])[0].T for c in clips])
        used = min(cfg["codes_used"], len(frames))
        centres = kmeans(frames, used, 20, cfg["seed"])
        codebook = codec.codebook.embed
        codebook.copy_(centres[torch.arange(codebook.shape[0]) % used])  # spare codes repeat the used ones
    log(f"[codec] codebook: {used} centres over {len(frames)} frames")
    encoder.requires_grad_(False)
    decoder = [p for n, p in codec.named_parameters() if not n.startswith("feature_extractor")]
    loop("decoder", decoder, cfg["decoder_steps"], lambda wav: codec.codebook.lookup(codec.encode(wav)))
    torch.save(codec.state_dict(), done)
    return codec


# ------------------------------------------------------------------------------------------------------
# stage 3: MoE-TTS


def lm_embedding(lm_dir: str) -> torch.Tensor:
    """The language model's token embedding, copied into the generator (as the release copies Qwen's)."""
    from safetensors import safe_open

    root = Path(lm_dir)
    if not root.is_absolute() and not root.exists():
        root = Path(__file__).resolve().parents[2] / root
    for f in sorted(root.glob("*.safetensors")):
        with safe_open(f, "pt") as st:
            if "model.embed_tokens.weight" in st.keys():  # noqa: SIM118 (a safetensors handle is not a mapping)
                return st.get_tensor("model.embed_tokens.weight").float()
    raise FileNotFoundError(f"{root}: no model.embed_tokens.weight in its safetensors files")


class UsedRows(torch.nn.Module):
    """The rows of a token embedding that the training texts use, as a small trainable table that stands in for
    the full one during training (so the optimizer does not carry a 150k-row table) and is written back after."""

    def __init__(self, full: torch.Tensor, used: list[int]):
        super().__init__()
        self.used = used
        self.local = {token: j for j, token in enumerate(used)}
        self.table = torch.nn.Embedding.from_pretrained(full[used].clone(), freeze=False)

    def ids(self, tokens: list[int]) -> torch.Tensor:
        return torch.tensor([self.local[t] for t in tokens])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)

    def write_back(self, full: torch.Tensor) -> torch.Tensor:
        out = full.clone()
        out[self.used] = self.table.weight.detach()
        return out


def train_tts(out: Path, rows: list[dict[str, Any]], codes: list[list[int]], cfg: dict[str, Any],
              log: Callable[[str], None]) -> MoETTS:
    """MoE-TTS teacher-forced on (phrase ids -> codes + eos).

    A ``prefix_rate`` share of the segments is conditioned on the last ``prefix_len`` codes of another clip, as
    the release conditions each segment on the end of the previous one, so that a multi-segment text (cut at
    punctuation) is spoken with the prefix the model saw in training. The text embedding is a copy of the
    language model's (``qwenvl_embed_tokens``); the release freezes its copy of a well-trained Qwen embedding,
    but the tiny LM's rows of words it never saw have collapsed onto one direction (cosine ~0.995 between "red"
    and "blue"), so by default the rows the phrases use are tuned (:class:`UsedRows`); the others keep the LM's.
    """
    from unimoe.tokenizer import load_tokenizer

    done = out / "moe_tts.pt"
    embedding = lm_embedding(cfg["lm"])
    torch.manual_seed(cfg["seed"])
    model = MoETTS(moe_tts.preset("tiny", idim=embedding.shape[1]))
    if done.is_file():
        model.load_state_dict(torch.load(done, map_location="cpu", weights_only=True))
        return model
    tokenizer = load_tokenizer()
    ids = [phrase_ids(tokenizer, r["text"]) for r in rows]
    rows_table = UsedRows(embedding, sorted({t for seq in ids for t in seq}))
    rows_table.requires_grad_(bool(cfg["tune_text_embedding"]))
    full_table = model.qwenvl_embed_tokens
    model.qwenvl_embed_tokens = rows_table  # type: ignore[assignment]  (restored below)
    texts = [rows_table.ids(seq) for seq in ids]
    targets = [torch.tensor(c) for c in codes]
    prefix_len = model.config.prefix_len
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3, weight_decay=0.0)
    run = Resumable(out / "tts_state.pt", model, optimizer, cfg["save_every"])
    steps = cfg["tts_steps"]
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 100)
                                                 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    first = run.start()
    for _ in range(first):
        schedule.step()
    rng = random.Random(cfg["seed"] + 1 + first)  # a resumed run draws fresh batches
    model.train()
    started = clock()
    for step in range(first + 1, steps + 1):
        batch = [rng.randrange(len(texts)) for _ in range(cfg["tts_batch"])]
        conditions = []
        for i in batch:
            prefix = None
            if prefix_len and rng.random() < cfg["prefix_rate"]:
                prefix = targets[rng.randrange(len(targets))][-prefix_len:]
            conditions.append(model.condition(texts[i], prefix=prefix))
        result = model(conditions, [targets[i] for i in batch])
        loss = result.loss + 0.01 * result.aux_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps:
            log(f"[tts] step {step}/{steps} loss {result.loss.item():.3f} ({since(started)})")
        run.maybe_save(step, last=step == steps)
    with torch.no_grad():
        full_table.weight.copy_(rows_table.write_back(embedding))
    model.qwenvl_embed_tokens = full_table
    model.eval()
    torch.save(model.state_dict(), done)
    return model


# ------------------------------------------------------------------------------------------------------


def run(cfg: dict[str, Any], log: Callable[[str], None] = print) -> Path:
    cfg = {**DEFAULTS, **cfg}
    started = clock()
    out = Path(cfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg["seed"])
    rows = synthesize(out / "data", train_phrases(int(cfg["phrases"])), log)
    clips = load_clips(out / "data", rows, wavtokenizer.preset("tiny").hop_length)
    codec = train_codec(out, clips, cfg, log)
    with torch.no_grad():
        codes = [codec.encode(c[None])[0].tolist() for c in clips]
    model = train_tts(out, rows, codes, cfg, log)
    export = Path(cfg["export_dir"] or out / "export")
    save_speech_head(export, model, codec)
    log(f"[export] {export} ({since(started)} in this run)")
    return export


def parse_args(argv: list[str]) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in DEFAULTS:
            raise SystemExit(f"unknown argument {arg!r}; expected key=value with key in {', '.join(DEFAULTS)}")
        default = DEFAULTS[key]
        cfg[key] = type(default)(value) if default is not None else value
    return cfg


if __name__ == "__main__":
    run(parse_args(sys.argv[1:]))
