"""Image generation and instruction editing scored by image metrics (no judge): COCO-30K FID, Emu Edit, MagicBrush.

One plugin, configured by ``options``, because the three differ only in which row fields the metrics read:

* ``source_field``: the image to edit (sent with the prompt; ``clip_dir``'s "before" image); none for text-to-image;
* ``reference_field``: the image that ``fid`` / ``clip_i`` / ``dino_i`` / ``l1`` compare the output with (the
  real COCO photo, MagicBrush's ground-truth edit, or Emu Edit's source image, which has no ground truth);
* ``caption_field``: the text of ``clip_t`` / ``clip_score``; ``input_caption_field`` / ``output_caption_field``:
  the caption pair of ``clip_dir``;
* ``oracle_image``: a path template for the oracle's answer where the benchmark has no ground-truth output
  (Emu Edit's sample keeps made-up edits under ``oracle/``); else the oracle answers with the reference;
* ``reference_size``: ``[w, h]`` to centre-crop and resize both images to before ``fid`` (COCO FID at 256);
* ``protocol_models``: named in the error when a metric's local model is missing; the sample fails, the run goes on.

Two loaders read the benchmarks' own release layouts from a local folder (``data_dir``; the sample fixtures use
the same layouts): :class:`MagicBrush` (the GitHub test zip) and :class:`CocoCaptions` (COCO 2014 annotations).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from PIL import Image

from harness.api import DocumentError, ImagePart, MediaError, Part, Reference, Response
from harness.media import load_image
from harness.metrics.base import get_metric
from harness.task import Task
from tasks.common import embedded_image_path, media_field

_IMAGE_METRICS = ("fid", "clip_i", "dino_i")


def center_crop_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The largest centred crop of the target aspect ratio, resized (bicubic) to ``size`` (width, height)."""
    w, h = image.size
    scale = min(w / size[0], h / size[1])
    cw, ch = round(size[0] * scale), round(size[1] * scale)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch)).resize(size, Image.Resampling.BICUBIC)


class GenEdit(Task):
    @property
    def opts(self) -> Mapping[str, Any]:
        return self.config.options

    # ---- data
    def _hub_docs(self) -> Iterator[dict[str, Any]]:
        """Hub image columns read undecoded (``{path, bytes}``): requests carry media as file paths."""
        import datasets

        ds = self.config.dataset
        table = datasets.load_dataset(ds.hub_id, ds.config, split=ds.split, revision=ds.revision)
        for key in {self.opts.get("source_field"), self.opts.get("reference_field")} - {None}:
            table = table.cast_column(key, datasets.Image(decode=False))
        yield from table

    def image_path(self, doc: Mapping[str, Any], key: str) -> str:
        value = doc.get(key)
        if isinstance(value, Mapping) and value.get("bytes") and not value.get("path"):
            return embedded_image_path(value, self.name)
        return self.media_path(media_field(doc, key, self.name))

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [ImagePart(self.image_path(doc, key)) for key in self.config.prompt.get("images", ())]

    # ---- answers
    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        template = self.opts.get("oracle_image")
        if template:
            return Reference(image=self.media_path(template.format(**doc)))
        return Reference(image=self.image_path(doc, self.opts["reference_field"]))

    def target(self, doc: Mapping[str, Any]) -> Any:
        key = self.opts.get("reference_field")
        value = doc.get(key) if key else None
        return value if isinstance(value, str) else None  # a relative path for the logs; hub bytes are not kept

    def extract(self, doc: Mapping[str, Any], response: Response) -> str | None:
        """The output image's path; there is no text to parse."""
        return response.image or None

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        if not prediction:
            raise MediaError(f"task {self.name}: sample {self.doc_id(doc)} returned no image")
        generated = load_image(prediction).convert("RGB")
        items: dict[str, Any] = {}
        for name in self.config.metrics:
            try:
                items[name] = self._item(name, generated, doc)
            except Exception as e:  # a missing model or field: name the metric and what the protocol uses
                wanted = self.opts.get("protocol_models", {}).get(name)
                hint = f" (the protocol uses {wanted})" if wanted else ""
                raise RuntimeError(f"metric {name}{hint}: {type(e).__name__}: {e}") from e
        return items

    def _text(self, doc: Mapping[str, Any], option: str) -> str:
        key = self.opts.get(option)
        value = doc.get(key) if key else None
        if not isinstance(value, str) or not value.strip():
            raise DocumentError(f"row has no caption in field {key!r} (options.{option})")
        return value

    def _item(self, name: str, generated: Image.Image, doc: Mapping[str, Any]) -> Any:
        metric, kw = get_metric(name), dict(self.config.metric_options.get(name, {}))
        if name in ("clip_t", "clip_score"):
            return metric.item(np.asarray(generated), self._text(doc, "caption_field"), **kw)
        if name == "clip_dir":
            pair = {"source": self.image_path(doc, self.opts["source_field"]),
                    "input_caption": self._text(doc, "input_caption_field"),
                    "output_caption": self._text(doc, "output_caption_field")}
            return metric.item(np.asarray(generated), pair, **kw)
        reference = load_image(self.image_path(doc, self.opts["reference_field"])).convert("RGB")
        if name == "l1":  # MagicBrush: the output resized (bicubic) to the reference's size
            return metric.item(np.asarray(generated.resize(reference.size, Image.Resampling.BICUBIC)),
                               np.asarray(reference), **kw)
        size = self.opts.get("reference_size")
        if name == "fid" and size:
            generated, reference = (center_crop_resize(im, tuple(size)) for im in (generated, reference))
        if name in _IMAGE_METRICS:
            return metric.item(np.asarray(generated), np.asarray(reference), **kw)
        raise ValueError(f"task {self.name} does not know how to score metric {name!r}")


class MagicBrush(GenEdit):
    """The MagicBrush test zip (osunlp/MagicBrush on GitHub, not the hub): ``edit_sessions.json`` maps a session
    id to its turns ``[{input, mask, output, instruction}, ...]`` with images under ``images/<session>/``, and
    ``options.caption_file`` maps ``{session: {image file: caption}}``. Each turn becomes one row (the
    single-turn setting: every turn edits the ground-truth input of that turn):
    ``{id: "<session>-<turn>", session_id, turn, instruction, input, mask, output, output_caption}``."""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        root = self.media_root if self.data == "sample" else Path(self.data_dir or self.media_root)
        sessions_file = root / "edit_sessions.json"
        if not sessions_file.is_file():
            raise FileNotFoundError(f"task {self.name}: no edit_sessions.json in {root} (unzip MagicBrush's "
                                    f"test.zip and pass data_dir=<its test/ folder>)")
        sessions = json.loads(sessions_file.read_text(encoding="utf-8"))
        captions_file = root / str(self.opts.get("caption_file", "local_descriptions.json"))
        captions = json.loads(captions_file.read_text(encoding="utf-8")) if captions_file.is_file() else {}
        for session in sorted(sessions, key=lambda s: (len(s), s)):
            for turn, edit in enumerate(sessions[session], 1):
                try:
                    yield {"id": f"{session}-{turn}", "session_id": session, "turn": turn,
                           "instruction": edit["instruction"],
                           **{k: f"images/{session}/{edit[k]}" for k in ("input", "mask", "output")},
                           "output_caption": captions.get(session, {}).get(edit["output"])}
                except KeyError as e:
                    yield DocumentError(f"{sessions_file}: session {session} turn {turn} lacks {e}")


class CocoCaptions(GenEdit):
    """COCO 2014 captions as released (``annotations/captions_val2014.json``: ``images`` with ``id`` and
    ``file_name``, ``annotations`` with ``id``, ``image_id``, ``caption``; photos under ``val2014/``):
    ``options.num_captions`` captions drawn without replacement with ``random.Random(options.sample_seed)``
    from the annotations sorted by id. Rows: ``{id, image_id, caption, file_name: "val2014/<file>"}``."""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        root = self.media_root if self.data == "sample" else Path(self.data_dir or self.media_root)
        path = root / str(self.opts.get("annotations", "annotations/captions_val2014.json"))
        if not path.is_file():
            raise FileNotFoundError(f"task {self.name}: no {path} (pass data_dir=<a COCO folder with "
                                    f"annotations/ and val2014/>)")
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {im["id"]: im["file_name"] for im in data["images"]}
        folder = str(self.opts.get("image_folder", "val2014"))
        annotations = sorted(data["annotations"], key=lambda a: a["id"])
        n = min(int(self.opts.get("num_captions", 30000)), len(annotations))
        chosen = random.Random(int(self.opts.get("sample_seed", 0))).sample(annotations, n)
        for a in sorted(chosen, key=lambda a: a["id"]):
            if a["image_id"] not in files:
                yield DocumentError(f"{path}: caption {a['id']} names unknown image {a['image_id']}")
                continue
            yield {"id": a["id"], "image_id": a["image_id"], "caption": a["caption"].strip(),
                   "file_name": f"{folder}/{files[a['image_id']]}"}
