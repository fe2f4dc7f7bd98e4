"""Controllable text-to-image generation on MultiGen-20M (ControlNet++ protocol, liming-ai/ControlNet_Plus_Plus
``eval/``): a condition image (Canny edges or a depth map) and a caption in, an image out, scored per image and
averaged, except FID, computed over the whole set:

* ``canny_f1``: edges of the generated image (resized to the condition's size) vs the condition edge map,
  binary F1 (``metric_options.canny_f1`` passes ``target_is_edges: true``);
* ``depth_rmse``: the generated image's depth from a registered estimator (``options.depth``, DPT
  ``Intel/dpt-large`` by default), ``d / max`` to 8 bits and resized to the condition's size, vs the condition
  min-max stretched to 0..255, per-image RMSE over every pixel;
* ``fid``: features of the generated vs the real image (pluggable encoder; Inception for published numbers);
* ``clip_score``: 100 * max(cos(generated image, caption), 0) with a local CLIP.

A metric whose model is not on disk fails the sample with an error naming the model; the run goes on.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
from PIL import Image

from harness.api import DocumentError, MediaError, Reference, Response
from harness.media import load_image
from harness.metrics.base import get_metric
from harness.metrics.control import depth_to_uint8, load_depth_estimator, minmax_uint8
from harness.task import Task
from tasks.common import numbered


class ControlGen(Task):
    def _field(self, key: str, default: str) -> str:
        return str(self.config.options.get(key, default))

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        """Rows have no id column: ControlNet++ names each output by the row's index in the split."""
        yield from numbered(super().docs(), self.config.doc_id)

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(image=self.media_path(doc[self._field("image_field", "image")]))

    def target(self, doc: Mapping[str, Any]) -> str:
        return doc[self._field("control_field", "control")]  # relative: logs stay free of local paths

    def extract(self, doc: Mapping[str, Any], response: Response) -> str | None:
        """The output image's path; there is no text to parse."""
        return response.image or None

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        if not prediction:
            raise MediaError(f"task {self.name}: sample {self.doc_id(doc)} returned no image")
        generated = load_image(prediction)
        control = load_image(self.media_path(target))
        real = self.media_path(doc[self._field("image_field", "image")])
        at_condition = np.asarray(generated.resize(control.size, Image.Resampling.BICUBIC))
        opts = self.config.metric_options
        items: dict[str, Any] = {}
        for name in self.config.metrics:
            try:
                items[name] = self._item(name, generated, control, at_condition, real, doc, opts)
            except Exception as e:  # a missing model or encoder: name the metric and what the protocol uses
                wanted = self.config.options.get("protocol_models", {}).get(name)
                hint = f" (the protocol uses {wanted})" if wanted else ""
                raise RuntimeError(f"metric {name}{hint}: {type(e).__name__}: {e}") from e
        return items

    def _item(self, name: str, generated: Image.Image, control: Image.Image, at_condition: np.ndarray,
              real: str, doc: Mapping[str, Any], opts: Mapping[str, Any]) -> Any:
        metric, kw = get_metric(name), dict(opts.get(name, {}))
        if name == "canny_f1":
            return metric.item(at_condition, np.asarray(control), **kw)
        if name in ("depth_rmse", "depth_abs_rel"):
            depth = load_depth_estimator(self.config.options.get("depth") or {}).predict(generated)
            return metric.item(depth_to_uint8(depth, control.size), minmax_uint8(control), **kw)
        if name == "clip_score":
            return metric.item(np.asarray(generated), str(doc[self._field("text_field", "text")]), **kw)
        return metric.item(np.asarray(generated), real, **kw)  # fid, clip_i, dino_i: vs the real image
