"""Content digests of model weights: the part of an adapter's fingerprint that changes when the weights do.

Two trainings write files of identical names and sizes, so names and sizes cannot tell them apart: small
checkpoints are hashed whole; multi-GB releases hash each file's size plus 64 evenly spaced 64 KiB samples
(any retraining changes every sample), which reads ~4 MB instead of the whole release.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

FULL_HASH_LIMIT = 1 << 30  # bytes; larger checkpoints are fingerprinted from samples of their content
_SAMPLES, _SAMPLE_BYTES = 64, 1 << 16
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".bin", ".gguf", ".pth")


def update_with_files(digest: hashlib._Hash, files: Iterable[Path]) -> None:
    """Feed each file's name, size and content (whole, or sampled when all of them exceed the limit)."""
    files = list(files)
    whole = sum(f.stat().st_size for f in files) <= FULL_HASH_LIMIT
    for f in files:
        size = f.stat().st_size
        digest.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            if whole:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
                continue
            for i in range(_SAMPLES):
                fh.seek(i * max(0, size - _SAMPLE_BYTES) // (_SAMPLES - 1))
                digest.update(fh.read(_SAMPLE_BYTES))


def weight_files(root: Path) -> list[Path]:
    """The weight files directly inside a checkpoint folder, in a stable order."""
    return sorted(p for p in root.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def folder_digest(root: Path, config_names: Iterable[str] = ("config.json",)) -> str:
    """sha256 over the folder's config files (those present) and its weight files."""
    digest = hashlib.sha256()
    for name in config_names:
        if (root / name).is_file():
            digest.update((root / name).read_bytes())
    update_with_files(digest, weight_files(root))
    return digest.hexdigest()
