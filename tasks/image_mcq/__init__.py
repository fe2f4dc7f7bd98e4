"""Image multiple-choice benchmarks as the paper-era lmms-eval (0.5.x) ran them, one plugin configured by YAML.

The benchmarks differ only in where the options live and how the prompt is laid out, so a task config says:

``options``
  ``images``: image fields in order (default ``[image]``); a field holding base64 text (MME-RealWorld's
  ``bytes``) is written to the media cache (see :func:`tasks.common.embedded_image_path`).
  ``choices``: where the options come from. ``{from: columns, fields: [...]}`` one column per option
  (SEED-Bench-2-Plus); ``{from: list, field: f}`` a list of texts (AI2D, CV-Bench); ``{from: labelled,
  field: f}`` a list already written "(A) text" (MME-RealWorld), shown as stored; ``{from: literal, field:
  f}`` a Python-literal list in a string (MMMU). Absent: the options are inside the question (MMStar,
  RealWorldQA; ``inline_choices`` is then a regex whose group 1 is a letter, used for the request's choice
  list) or inside the image (MMMU-Pro vision).
  ``option_line`` (default ``"{letter}. {text}"``), ``image_choice`` (SEED-Bench-2-Plus shows an option
  that names an image file as this token), ``question_drop`` (substrings removed from the question),
  ``strip_question``, ``answer``: ``letter`` (default), ``index`` (AI2D stores "0".."3"),
  ``parenthesised`` (CV-Bench stores "(A)") or ``raw`` (open answers: the field as stored, a string or a
  list of accepted answers; the oracle writes the first; a row without one, e.g. DocVQA test, keeps its
  response but is not scored).
  ``image_by_key``: the image is not in the row but found by a key column (GQA's ``imageId``):
  ``{field, path}`` for sample/local data (``path`` formatted with the row, under the media root) and
  ``hub: {config, split, id_field, image_field}`` for the hub table holding the images.
``prompt``: ``pre``/``template``/``post`` over the row's fields plus ``question`` (as above), ``options``
  (one line per option) and ``letters`` ("A, B, C, D").
``metric_options``: a metric given ``by: [field, ...]`` receives those fields' values as its ``groups``
  (``macro_accuracy``); ``question_type_field`` passes a row's question type (MMMU's open questions).
"""

from __future__ import annotations

import ast
import re
from typing import Any, Iterator, Mapping

from harness.api import DocumentError, ImagePart, Part, Reference, Response
from harness.extract.base import ExtractContext, get_rule
from harness.metrics.base import get_metric
from harness.task import Sample, Task
from tasks.common import LETTERS, embedded_image_path, media_field, present

_BASE64_START = re.compile(r"^[A-Za-z0-9+/]{64}")  # a path never looks like this; base64 image text does


class ImageMCQ(Task):
    @property
    def opts(self) -> Mapping[str, Any]:
        return self.config.options

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        """Rows as stored; with ``doc_id: _row`` (sets without an id column: RealWorldQA, AI2D) each row also
        gets its position in the split as ``_row``; with ``image_by_key`` each row gets its ``image``."""
        for i, row in enumerate(super().docs()):
            if isinstance(row, DocumentError):
                yield row
                continue
            if self.config.doc_id == "_row":
                row = {**row, "_row": i}
            if self.opts.get("image_by_key") and "image" not in row:
                row = {**row, "image": self._keyed_image(row)}
            yield row

    def _keyed_image(self, row: Mapping[str, Any]) -> Any:
        spec = self.opts["image_by_key"]
        if self.data == "full" and not self.data_dir:
            return self._hub_images().get(row[spec["field"]])
        return spec["path"].format(**row)

    def _hub_images(self) -> dict[Any, Any]:
        """The hub's image table (GQA ``testdev_balanced_images``), undecoded, by id; loaded once."""
        if not hasattr(self, "_image_table"):
            import datasets

            hub = self.opts["image_by_key"]["hub"]
            table = datasets.load_dataset(self.config.dataset.hub_id, hub["config"], split=hub["split"],
                                          revision=self.config.dataset.revision)
            table = table.cast_column(hub["image_field"], datasets.Image(decode=False))
            self._image_table = {r[hub["id_field"]]: r[hub["image_field"]] for r in table}
        return self._image_table

    # ---- options
    def option_texts(self, doc: Mapping[str, Any]) -> list[str]:
        """The options in display order (empty when they are written inside the question or the image)."""
        spec = self.opts.get("choices")
        if not spec:
            return []
        try:
            if spec["from"] == "columns":
                return [str(doc[f]) for f in spec["fields"] if present(doc.get(f))]
            value = doc[spec["field"]]
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row lacks option field {e}") from None
        if spec["from"] == "literal":
            value = ast.literal_eval(value) if isinstance(value, str) else value
        return [str(v) for v in value]

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        """Letter -> option text (for extraction rules and the request's choice list)."""
        texts = self.option_texts(doc)
        if (self.opts.get("choices") or {}).get("from") == "labelled":
            return {t.strip()[1]: t.strip()[3:].strip() for t in texts}  # "(A) text"
        if texts:
            return dict(zip(LETTERS, texts))
        pattern = self.opts.get("inline_choices")
        if pattern:
            return {m[1]: "" for m in re.finditer(pattern, str(doc.get("question", "")))}
        return {}

    def options_block(self, doc: Mapping[str, Any]) -> str:
        texts = self.option_texts(doc)
        if (self.opts.get("choices") or {}).get("from") == "labelled":
            return "\n".join(texts)
        line = self.opts.get("option_line", "{letter}. {text}")
        token = self.opts.get("image_choice")
        if token:
            texts = [token if ("jpg" in t or "png" in t) else t for t in texts]
        return "\n".join(line.format(letter=letter, text=text) for letter, text in zip(LETTERS, texts))

    # ---- request
    def question(self, doc: Mapping[str, Any]) -> str:
        question = str(doc.get("question", ""))
        if self.opts.get("strip_question"):
            question = question.strip()
        for drop in self.opts.get("question_drop", ()):
            question = question.replace(drop, "")
        return question

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        letters = ", ".join(self.options(doc))
        return super().prompt_text({**doc, "question": self.question(doc), "options": self.options_block(doc),
                                    "letters": letters})

    def image_fields(self, doc: Mapping[str, Any]) -> list[str]:
        return list(self.opts.get("images", ["image"]))

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        parts: list[Part] = []
        for key in self.image_fields(doc):
            value = doc.get(key)
            inline = isinstance(value, Mapping) and value.get("bytes") and not value.get("path")
            if inline or (isinstance(value, str) and _BASE64_START.match(value)):
                parts.append(ImagePart(embedded_image_path(value, self.name)))
            else:
                parts.append(ImagePart(self.media_path(media_field(doc, key, self.name))))
        return parts

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(self.options(doc))

    # ---- scoring
    def target(self, doc: Mapping[str, Any]) -> Any:
        style = self.opts.get("answer", "letter")
        if style == "raw":
            return doc.get(self.opts.get("target_field", "answer"))
        answer = str(doc[self.opts.get("target_field", "answer")])
        if style == "index":
            return LETTERS[int(answer)]
        if style == "parenthesised":
            return answer.strip("()")
        return answer

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        target = self.target(doc)
        if isinstance(target, (list, tuple)):
            target = target[0] if target else None
        return Reference(text="" if target is None else str(target))

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        """As the base class; a row without a gold answer (a hidden test split) keeps its response in the
        sample log, marked as an error so that no metric counts it."""
        if self.target(doc) in (None, [], ()):
            return Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                          error=response.error or f"no gold answer in {self.data_source()}: prediction logged, "
                                                  f"not scored")
        return super().process(doc, response, request_hash)

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        return ExtractContext(options=self.options(doc), doc=doc, seed=self.seed)

    def metric_kwargs(self, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(self.config.metric_options.get(name, {}))
        if "by" in kwargs:
            kwargs["groups"] = tuple(str(doc.get(k)) for k in kwargs.pop("by"))
        if "question_type_field" in kwargs:
            kwargs["question_type"] = str(doc.get(kwargs.pop("question_type_field")) or "multiple-choice")
        return kwargs

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        return {m: get_metric(m).item(prediction, target, **self.metric_kwargs(m, doc)) for m in self.config.metrics}


_IMAGE_TAG = re.compile(r"<image (\d+)>")


class MMMU(ImageMCQ):
    """MMMU and MMMU-Pro (standard): options from the Python-literal ``options`` string; the images are the
    distinct ``<image k>`` tags of question and options in sorted order (the tags stay in the text, as in
    lmms-eval's non-interleaved format); open questions (``question_type == "open"``, MMMU only) get the
    open-ended prompt and MMMU's open parser."""

    def is_open(self, doc: Mapping[str, Any]) -> bool:
        return doc.get("question_type") == "open"

    def image_fields(self, doc: Mapping[str, Any]) -> list[str]:
        text = f"{doc.get('question', '')}\n{doc.get('options', '')}"
        return sorted({f"image_{k}" for k in _IMAGE_TAG.findall(text)})

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        p = self.config.prompt
        if self.is_open(doc):
            return p["open_template"].format(question=doc["question"])
        return p["template"].format(question=doc["question"], options=self.options_block(doc))

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        return {} if self.is_open(doc) else super().options(doc)

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc["answer"])

    def extract(self, doc: Mapping[str, Any], response: Response) -> Any:
        rule = self.opts.get("open_extract", "mmmu_open") if self.is_open(doc) else self.config.extract
        return get_rule(rule)(response.text, self.extract_context(doc))
