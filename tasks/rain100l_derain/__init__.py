"""Rain100L deraining: a rainy image in, a restored image out, PSNR and SSIM against the clean image.

The paper gives no colour space or resize policy (docs/protocols/scoring-rules.md). We follow the Rain100L convention
(Y channel of YCbCr, set in the metric options) and resize the model's output back to the input size
(bicubic) before scoring, as diffusion decoders emit their own resolution. Both choices are inferred.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from PIL import Image

from harness.api import MediaError, Reference, Response
from harness.media import load_image
from harness.metrics.base import get_metric
from harness.task import Task


class Derain(Task):
    """Also serves SIDD denoising (``options.target_field: gt``, RGB metrics): any degraded-in, clean-out pair."""

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(image=self.media_path(self.target(doc)))

    def target(self, doc: Mapping[str, Any]) -> str:
        return doc[self.config.options.get("target_field", "norain")]  # relative: logs stay free of local paths

    def extract(self, doc: Mapping[str, Any], response: Response) -> str | None:
        """The output image's path; there is no text to parse."""
        return response.image or None

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        if not prediction:
            raise MediaError(f"task {self.name}: sample {self.doc_id(doc)} returned no image")
        clean = load_image(self.media_path(target))
        restored = load_image(prediction)
        if restored.size != clean.size:
            restored = restored.resize(clean.size, Image.Resampling.BICUBIC)
        opts = self.config.metric_options
        pair = np.asarray(restored), np.asarray(clean)
        return {m: get_metric(m).item(*pair, **opts.get(m, {})) for m in self.config.metrics}
