"""Multiple choice over a LIST of options with a letter answer, text-only or with an audio clip.

One plugin for MMLU-Pro (up to 10 options, A-J), RACE-audio and EHSL (listening comprehension, A-D): the
options are lettered in order and joined into ``{options}`` for the YAML template; every other row field
is available to the template too. ``options.audio_field`` names the audio column (unset: text only).
:class:`MMAU` is the variant whose choices are a JSON string and whose gold answer is the choice text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from harness.api import DocumentError, Part, Reference
from harness.extract.base import ExtractContext
from harness.task import Task
from tasks.common import LETTERS, audio_parts, media_field


class ListMCQ(Task):
    def option_list(self, doc: Mapping[str, Any]) -> list[str]:
        field = self.config.options.get("options_field", "options")
        value = doc.get(field)
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Sequence) or not value or len(value) > len(LETTERS):
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} has no usable {field!r} list")
        return [str(v) for v in value]

    def lettered(self, doc: Mapping[str, Any]) -> dict[str, str]:
        return dict(zip(LETTERS, self.option_list(doc)))

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        fmt = self.config.options.get("option_format", "{letter}. {text}")
        block = "\n".join(fmt.format(letter=k, text=v) for k, v in self.lettered(doc).items())
        return super().prompt_text({**doc, "options": block})

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return audio_parts(self, doc, self.config.options.get("audio_field"))

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(self.lettered(doc))

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        return ExtractContext(options=self.lettered(doc), doc=doc, seed=self.seed)

    def target(self, doc: Mapping[str, Any]) -> str:
        letter = str(doc.get(self.config.options.get("target_field", "answer"), "")).strip().upper()
        if letter not in self.lettered(doc):
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} answer {letter!r} is not an option letter")
        return letter

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(text=f"The answer is ({self.target(doc)}).")


class MMAU(ListMCQ):
    """lmms-lab/mmau: ``choices`` is a JSON list, ``answer`` the choice text; ``options.task`` keeps one subset
    (speech, sound or music) of the test-mini split, so the three tasks share one loader and fixture."""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        wanted = self.config.options.get("task")
        for row in super().docs():
            if isinstance(row, DocumentError) or wanted is None or row.get("task") == wanted:
                yield row

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return ()  # free text: the rule maps a letter back to a choice

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc["answer"])

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        gold = self.target(doc).strip().lower()
        letter = next((k for k, v in self.lettered(doc).items() if v.strip().lower() == gold), None)
        if letter is None:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} answer is not among its choices")
        return Reference(text=f"({letter}) {self.lettered(doc)[letter]}")


class ListeningMCQ(ListMCQ):
    """Listening comprehension (EHSL, RACE-audio): one spoken passage, several lettered questions on it.

    Local data (``data_dir``): a folder or file holding rows in the documented schema ``id, audio, question,
    options (list), answer (letter)`` plus, for EHSL, ``subset`` (short/long); a ``.json`` file holding a
    JSON list (EHSL's ``high_exam.json``) is read as rows too. ``options.subset`` keeps one subset; a row
    without the subset field is placed by its clip's duration (``options.long_min_seconds``).
    """

    def _local_docs(self, path: Path) -> Iterator[dict[str, Any] | DocumentError]:
        name = self.config.options.get("local_file")
        if path.is_dir() and name and (path / name).is_file():
            path = path / name
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list):
                raise DocumentError(f"task {self.name}: {path} is not a JSON list of rows")
            yield from (r if isinstance(r, dict) else DocumentError(f"{path}: row {i} is not an object")
                        for i, r in enumerate(rows))
        else:
            yield from super()._local_docs(path)

    def subset_of(self, doc: Mapping[str, Any]) -> str:
        field = self.config.options.get("subset_field", "subset")
        if doc.get(field):
            return str(doc[field])
        from harness.media import SAMPLE_RATE, load_audio

        clip = self.media_path(media_field(doc, self.config.options["audio_field"], self.name))
        seconds = len(load_audio(clip)) / SAMPLE_RATE
        return "long" if seconds >= float(self.config.options.get("long_min_seconds", 60)) else "short"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        wanted = self.config.options.get("subset")
        for row in super().docs():
            if isinstance(row, DocumentError) or wanted is None:
                yield row
                continue
            try:
                keep = self.subset_of(row) == wanted
            except Exception as e:  # a missing or broken clip: report the row instead of dropping it
                yield DocumentError(f"task {self.name}: row {row.get(self.config.doc_id)!r}: {e}")
                continue
            if keep:
                yield row
