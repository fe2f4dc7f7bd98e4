"""Charades-STA temporal grounding, as the paper-era lmms-eval task ran it (``tasks/charades_sta``).

Prompt = instruction + caption + ". " + request; the video is ``Charades_v1_480/<video>``. The answer span is
read by the ``charades_time`` rule (the reference ``extract_time``); a response without a span is scored as
the reference does, with a stand-in span after the gold one, i.e. IoU 0. mIoU is primary; R@IoU 0.3/0.5/0.7
are reported too.
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import DocumentError, Part, Reference, VideoPart
from harness.task import Task


class CharadesSTA(Task):
    def doc_id(self, doc: Mapping[str, Any]) -> str:
        """Rows have no id; the reference keys its results by video, caption and span, and so do we."""
        try:
            return f"{doc['video']}>>>{doc['caption']}>>>{list(doc['timestamp'])}"
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row lacks field {e}") from None

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        opts = self.config.options
        return [VideoPart(self.media_path(f"{opts.get('video_dir', 'Charades_v1_480')}/{doc['video']}"),
                          fps=float(opts.get("fps", 1.0)), max_frames=int(opts.get("max_frames", 64)))]

    def target(self, doc: Mapping[str, Any]) -> tuple[float, float]:
        try:
            start, end = (float(t) for t in doc["timestamp"])
        except (KeyError, TypeError, ValueError):
            raise DocumentError(f"task {self.name}: row has no [start, end] timestamp") from None
        return (start, end)

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        start, end = self.target(doc)
        return Reference(text=f"The event happens in the {start:g} - {end:g} seconds.")

    def process(self, doc, response, request_hash: str = ""):  # type: ignore[override]
        sample = super().process(doc, response, request_hash)
        if sample.prediction is not None:
            sample.prediction = list(sample.prediction)  # JSON-friendly in the sample log
        return sample
