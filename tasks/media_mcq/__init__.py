"""Multiple choice over video, image and audio, configured by YAML: one plugin for the video and omni sets
whose rows hold a question, a list of options and the answer (WorldSense, OmniBench, LongVideoBench,
EgoSchema, TOMATO), with small subclasses where scoring is not a plain mean (VSI-Bench, MVBench, VideoMMMU).

``options`` knobs (all optional except ``media``):

* ``media``: list of ``{kind: video|image|audio, field: <column>}`` (a path, or a hub feature read with
  ``decode=False``) or ``{kind, path: "<template over the row>"}``, in the order the protocol feeds them;
  ``use_audio: true`` on a video asks the adapter for its audio track too. ``fps`` / ``max_frames``: sampling.
* ``end_time_field``: a column holding the moment the question is asked ("HH:MM:SS", "MM:SS" or seconds):
  the video/audio parts then end there (a time window, decoded by the harness), so the model sees the media
  only up to it; ``context_seconds`` keeps only that many seconds before it (default: from the start).
* ``options_field``: the list column (``"A. text"`` strings when ``options_prefixed``, else bare texts; a
  string holding a Python list literal, as hub CSVs store lists, is parsed);
  or ``option_columns``: columns read in order up to the first ``"N/A"`` (LongVideoBench).
* ``option_line``: how the prompt's ``{options}`` lists bare texts (joined by newlines); prefixed options are
  shown as stored. ``{options_dict}`` is the Python repr of ``{letter: text}`` (TOMATO's prompt).
* ``answer``: ``letter`` (default), ``index`` (0-based int or digit string) or ``text`` (the option's text);
  ``answer_field`` names the column (default ``answer``).
* ``context``: ``text`` (default) hands the rule letter -> option text; ``raw`` the stored strings (EgoSchema's
  parser matches the whole "A. text").
"""

from __future__ import annotations

import ast
import re
from typing import Any, Iterator, Mapping

from harness.api import AudioPart, DocumentError, ImagePart, Part, Reference, Response, VideoPart
from harness.extract.base import ExtractContext, get_rule
from harness.task import Task
from tasks.common import LETTERS, clock_seconds, spec_media


class MediaMCQ(Task):
    # ---- options
    def raw_options(self, doc: Mapping[str, Any]) -> list[str]:
        opts = self.config.options
        if "option_columns" in opts:
            out = []
            for column in opts["option_columns"]:
                if doc.get(column) in (None, "N/A"):
                    break
                out.append(str(doc[column]))
            return out
        values = doc.get(opts.get("options_field", "options"))
        if isinstance(values, str):
            try:
                values = ast.literal_eval(values)
            except (ValueError, SyntaxError):
                raise DocumentError(f"task {self.name}: options {values[:80]!r} are not a list literal") from None
        return [str(v) for v in values] if values else []

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        """letter -> option text (the stored "A. " prefix removed)."""
        raw = self.raw_options(doc)
        if not self.config.options.get("options_prefixed"):
            return dict(zip(LETTERS, raw))
        out = {}
        for letter, option in zip(LETTERS, raw):
            head, sep, text = option.partition(".")
            if not sep or head.strip() != letter:
                raise DocumentError(f"task {self.name}: option {option!r} is not '{letter}. text'")
            out[letter] = text.strip()
        return out

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(self.options(doc))

    # ---- prompt and media
    def prompt_fields(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        opts = self.config.options
        options = self.options(doc)
        if opts.get("options_prefixed"):
            listed = "\n".join(self.raw_options(doc))
        else:
            line = opts.get("option_line", "{letter}. {text}")
            listed = "\n".join(line.format(letter=k, text=v) for k, v in options.items())
        return {**doc, "options": listed, "options_dict": repr(options)}

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        return super().prompt_text(self.prompt_fields(doc))

    def window(self, doc: Mapping[str, Any]) -> dict[str, float | None]:
        """The time window of the row's video/audio (``end_time_field`` / ``context_seconds``), none if unset."""
        opts = self.config.options
        if not opts.get("end_time_field"):
            return {}
        end = clock_seconds(doc.get(opts["end_time_field"]))
        context = opts.get("context_seconds")
        return {"start_time": max(0.0, end - float(context)) if context else None, "end_time": end}

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        opts = self.config.options
        window = self.window(doc)
        parts: list[Part] = []
        for spec in opts["media"]:
            path = self.media_path(spec_media(doc, spec, self.name))
            kind = spec["kind"]
            if kind == "video":
                parts.append(VideoPart(path, fps=float(opts.get("fps", 1.0)), max_frames=int(opts.get("max_frames", 64)),
                                       use_audio=bool(spec.get("use_audio", False)), **window))
            elif kind == "image":
                parts.append(ImagePart(path))
            elif kind == "audio":
                parts.append(AudioPart(path, **window))
            else:
                raise ValueError(f"task {self.name}: unknown media kind {kind!r}")
        return parts

    # ---- scoring
    def target(self, doc: Mapping[str, Any]) -> Any:
        opts = self.config.options
        value = doc.get(opts.get("answer_field", "answer"))
        style = opts.get("answer", "letter")
        if style == "letter":
            return value
        if style == "index":
            return LETTERS[int(value)]
        if style == "text":
            for letter, text in self.options(doc).items():
                if text == value:
                    return letter
            raise DocumentError(f"task {self.name}: answer {value!r} is none of the options")
        raise ValueError(f"task {self.name}: unknown answer style {style!r}")

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(text=str(self.target(doc)))

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        options = self.options(doc)
        if self.config.options.get("context") == "raw":
            options = dict(zip(options, self.raw_options(doc)))
        return ExtractContext(options=options, doc=doc, seed=self.seed)


# --------------------------------------------------------------------------------------------------


NA_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")


class VSIBench(MediaMCQ):
    """VSI-Bench: numeric-answer (NA) questions get a short-answer prompt and MRA, multiple-choice (MCA) ones
    the options and exact match; the overall score is the unweighted mean of the 8 task scores, the three
    rel_direction levels averaged into one task first (metric ``group_mean``)."""

    def is_numeric(self, doc: Mapping[str, Any]) -> bool:
        return doc["question_type"] in NA_TYPES

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        key = "na" if self.is_numeric(doc) else "mca"
        try:
            return self.config.prompt[key].format(**self.prompt_fields(doc))
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row lacks field {e} used by the prompt") from None

    def target(self, doc: Mapping[str, Any]) -> Any:
        return str(doc["ground_truth"])

    def group(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        qtype = str(doc["question_type"])
        if qtype.startswith("object_rel_direction_"):
            return ("object_rel_direction", qtype.rsplit("_", 1)[1])
        return (qtype,)

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        from harness.metrics.base import get_metric

        inner = "mra" if self.is_numeric(doc) else "accuracy"
        return {m: get_metric(m).item(prediction, target, group=self.group(doc), inner=inner)
                for m in self.config.metrics}


class MVBench(MediaMCQ):
    """MVBench: 20 hub configs (one per sub-task); rows have no id or sub-task column, so the loader adds
    ``sub_task`` and ``question_id`` (``<sub_task>_<row>``). Options are shown as ``(A) text``; the gold is the
    letter of the answer text. The score is the mean over sub-tasks (metric ``group_mean``); as in the
    reference aggregation, an empty (stripped) response is left out of the denominator instead of counting as
wrong (config ``unanswered: excluded``)."""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        counters: dict[str, int] = {}
        for row in super().docs():
            if isinstance(row, DocumentError):
                yield row
                continue
            sub_task = str(row.get("sub_task", ""))
            counters[sub_task] = counters.get(sub_task, 0) + 1
            yield {**row, "question_id": row.get("question_id", f"{sub_task}_{counters[sub_task] - 1}"),
                   "video_dir": self.config.options["video_dirs"].get(sub_task, sub_task)}

    def _hub_docs(self) -> Iterator[dict[str, Any]]:
        import datasets

        ds = self.config.dataset
        for sub_task in self.config.options["video_dirs"]:
            for row in datasets.load_dataset(ds.hub_id, sub_task, split=ds.split, revision=ds.revision):
                yield {**row, "sub_task": sub_task}

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        from harness.metrics.base import get_metric

        return {m: get_metric(m).item(prediction, target, group=(doc["sub_task"],), inner="accuracy")
                for m in self.config.metrics}



class VideoMMMU(MediaMCQ):
    """VideoMMMU: three hub configs (tracks Perception, Comprehension, Adaptation; 300 questions each), one
    lecture video per ``id`` shared by its three questions (so ``track`` joins ``id`` in the document id).
    Prompts differ by track and, in Adaptation, by question type; multiple-choice answers go through the
    ``videommmu_mcq`` rule, the rest through ``videommmu_open``. The score is the unweighted mean of the track
    accuracies (``group_mean`` over ``track`` with MMMU's per-question scoring, ``mmmu_acc``), and, as in the
    reference aggregation, an empty (stripped) response ("API Error" there) is left out instead of counting as
wrong (config ``unanswered: excluded``)."""

    MULTIPLE_CHOICE = "multiple-choice"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        disciplines = self.config.options["disciplines"]
        for row in super().docs():
            if isinstance(row, DocumentError):
                yield row
                continue
            subject = "_".join(str(row.get("id", "")).split("_")[1:-1])  # "<prefix>_<Subject>_<n>"
            if subject not in disciplines:
                yield DocumentError(f"task {self.name}: row {row.get('id')!r} names no known subject")
                continue
            yield {**row, "discipline": disciplines[subject], "track_id": f"{row.get('track')}/{row.get('id')}"}

    def _hub_docs(self) -> Iterator[dict[str, Any]]:
        import datasets

        ds = self.config.dataset
        for track in self.config.options["tracks"]:
            for row in datasets.load_dataset(ds.hub_id, track, split=ds.split, revision=ds.revision):
                yield {**row, "track": track}

    def is_mcq(self, doc: Mapping[str, Any]) -> bool:
        return doc.get("question_type") == self.MULTIPLE_CHOICE

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        """letter -> option as stored (the reference matches option text against the stored string)."""
        return dict(zip(LETTERS, self.raw_options(doc)))

    def options_block(self, doc: Mapping[str, Any]) -> str:
        raw = self.raw_options(doc)
        if all(o.startswith(f"{letter}.") for o, letter in zip(raw, LETTERS)):
            return "\n".join(raw)
        return "\n".join(f"{letter}. {o}" for letter, o in zip(LETTERS, raw))

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        p = self.config.prompt
        question = str(doc["question"])
        if doc.get("track") != "Adaptation":
            return f"{question}\n{self.options_block(doc)}{p['perception_and_comprehension']}"
        if self.is_mcq(doc):
            return f"{p['adaptation_pre']}{p['adaptation_mcq']}{question}\n{self.options_block(doc)}"
        return f"{p['adaptation_pre']}{p['adaptation_open']}{question}"

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(self.options(doc)) if self.is_mcq(doc) else ()

    def target(self, doc: Mapping[str, Any]) -> Any:
        return str(doc["answer"])

    def extract(self, doc: Mapping[str, Any], response: Response) -> Any:
        rule = self.config.extract if self.is_mcq(doc) else self.config.options.get("open_extract", "videommmu_open")
        return get_rule(rule)(response.text, self.extract_context(doc))

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        from harness.metrics.base import get_metric

        # the reference scores "multiple-choice" and "perception" rows by letter, everything else as open
        qtype = "multiple-choice" if doc.get("question_type") in (self.MULTIPLE_CHOICE, "perception") else "open"
        return {m: get_metric(m).item(prediction, target, group=(str(doc["track"]),), inner="mmmu_acc",
                                      question_type=qtype)
                for m in self.config.metrics}


class OmniVideoBench(MediaMCQ):
    """OmniVideoBench: the release nests questions under their video (``video, video_type, duration
    ("MM:SS"), questions: [{question, question_type, audio_type, reasoning_steps, answer, options,
    correct_option}]``); the loader flattens it to one row per question, with ``qid = "<video>#<k>"``."""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        for row in super().docs():
            if isinstance(row, DocumentError) or "questions" not in row:
                yield row
                continue
            video = {k: v for k, v in row.items() if k != "questions"}
            for k, qa in enumerate(row["questions"] or []):
                yield {**video, **qa, "qid": f"{row.get('video')}#{k}"}

    def _local_docs(self, path):  # type: ignore[override]
        """The release's ``.json`` list (data_example/data.json layout) is read as rows, like a JSONL file."""
        import json
        from pathlib import Path

        path = Path(path)
        if path.is_file() and path.suffix == ".json":
            yield from json.loads(path.read_text(encoding="utf-8"))
        else:
            yield from super()._local_docs(path)


class StreamingBench(MediaMCQ):
    """StreamingBench (offline protocol of src/benchmark/StreamingBench.py): each question carries the
    ``time_stamp`` it is asked at and sees the video (with its sound) only up to then (``end_time_field``).
    Hub rows (``question_id`` "<task type>_sample_<n>_<k>", ``options`` a list literal) name no video; the
    loader adds ``video_id`` ("<task type>_sample_<n>", shared by the video's five questions) and
    ``video_sample`` ("sample_<n>") for the media path. The reference fills a four-slot template: the first
    four stored entries are shown (as stored when the first begins "A.", else lettered A-D), so the
    benchmark's few rows whose options were split into five or more entries show only those four."""

    QUESTION_ID = re.compile(r"^(?P<video>.+_(?P<sample>sample_\d+))_\d+$")

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        for row in super().docs():
            if isinstance(row, DocumentError):
                yield row
                continue
            match = self.QUESTION_ID.match(str(row.get("question_id", "")))
            if not match:
                yield DocumentError(f"task {self.name}: question_id {row.get('question_id')!r} is not "
                                    "'<task type>_sample_<n>_<k>'")
                continue
            yield {**row, "video_id": match["video"], "video_sample": match["sample"]}

    def shown_options(self, doc: Mapping[str, Any]) -> list[str]:
        raw = self.raw_options(doc)[:4]
        if raw and not raw[0].startswith("A."):
            raw = [f"{letter}. {text}" for letter, text in zip(LETTERS, raw)]
        return raw

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        """letter -> the line shown for it (the template's four slots)."""
        return dict(zip(LETTERS, self.shown_options(doc)))

    def prompt_fields(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {**doc, "options": "\n".join(self.shown_options(doc))}
