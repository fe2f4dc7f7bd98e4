"""omniworld image-output tasks: draw, edit, derain (see :mod:`unimoe.train.omniworld_images`).

The split is generated on first use into the user cache folder (keyed by generator version, seed and size).
Each output is scored from pixels: ``accuracy`` = the checker reads back the target's shape, colour and corner
(all three; drawing and editing), plus PSNR and SSIM against the target rendering (all kinds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from PIL import Image

from harness.api import DocumentError, MediaError, Reference, Response
from harness.media import load_image
from harness.metrics.base import get_metric
from harness.task import Task, read_jsonl


class OmniWorldImageOut(Task):
    @property
    def size(self) -> int:
        opts = self.config.options
        return int(opts.get("sample_n", 10) if self.data == "sample" else opts.get("full_n", 50))

    @property
    def kind(self) -> str:
        return str(self.config.options["kind"])

    @property
    def media_root(self) -> Path:
        from unimoe.train.omniworld_images import VERSION

        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        seed = int(self.config.options.get("seed", 0))
        return base / "unimoe" / "omniworld_images" / f"v{VERSION}-seed{seed}-test-{self.kind}-n{self.size}"

    def data_source(self) -> str:
        from unimoe.train.omniworld_images import VERSION

        return f"generated:omniworld-images-v{VERSION}/test/{self.kind}/seed{self.config.options.get('seed', 0)}/n{self.size}"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        root = self.media_root
        if not (root / "docs.jsonl").is_file():
            from unimoe.train.omniworld_images import generate

            generate(root, kinds=(self.kind,), n=self.size, split="test", seed=int(self.config.options.get("seed", 0)))
        yield from read_jsonl(root / "docs.jsonl")

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(image=self.media_path(doc["target"]))

    def target(self, doc: Mapping[str, Any]) -> Any:
        return doc["target"]

    def extract(self, doc: Mapping[str, Any], response: Response) -> str | None:
        """The output image's path; there is no text to parse."""
        return response.image or None

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        from unimoe.train.omniworld_images import check_scene

        if not prediction:
            raise MediaError(f"task {self.name}: sample {self.doc_id(doc)} returned no image")
        reference = load_image(self.media_path(target)).convert("RGB")
        output = load_image(prediction).convert("RGB")
        if output.size != reference.size:
            output = output.resize(reference.size, Image.Resampling.BICUBIC)
        pair = np.asarray(output), np.asarray(reference)
        opts = self.config.metric_options
        items: dict[str, Any] = {}
        for name in self.config.metrics:
            if name == "accuracy":
                items[name] = float(all(check_scene(pair[0], doc["shape"], doc["colour"], doc["corner"]).values()))
            else:
                items[name] = get_metric(name).item(*pair, **opts.get(name, {}))
        return items
