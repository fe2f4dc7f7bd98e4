"""Audio captioning (Clotho v1/v2, AudioCaps, MusicCaps): one clip in, a caption out, CIDEr against every
reference caption of the clip. The YAML describes the table:

* ``options.audio_path``: where a row's clip lies under the media root, a template over the row's fields
  (Clotho ``audio/{file_name}``; AudioCaps and MusicCaps clips are cut from YouTube by the user);
* ``options.captions``: the reference columns; a cell may hold one caption or a list of them
  (Clotho ``caption_1`` .. ``caption_5``, MusicCaps ``caption``);
* ``options.group_by``: a column whose equal values make one clip, for tables with one row per caption
  (the AudioCaps csv); their captions are gathered in order of appearance;
* ``options.keep``: ``{column: value}`` rows to keep (MusicCaps evaluates ``is_audioset_eval`` rows only).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from harness.api import AudioPart, DocumentError, Part, Reference
from harness.task import Task

CLOTHO_CAPTIONS = tuple(f"caption_{i}" for i in range(1, 6))


class ClothoCaption(Task):
    @property
    def caption_fields(self) -> tuple[str, ...]:
        return tuple(self.config.options.get("captions", CLOTHO_CAPTIONS))

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        keep = dict(self.config.options.get("keep") or {})
        rows = (r for r in super().docs()
                if isinstance(r, DocumentError) or all(r.get(k) == v for k, v in keep.items()))
        key = self.config.options.get("group_by")
        yield from self._grouped(rows, key) if key else rows

    def _grouped(self, rows: Iterator[dict[str, Any] | DocumentError], key: str) -> Iterator[Any]:
        """One doc per clip: the first row's fields, each caption column turned into the list of all rows'."""
        clips: dict[Any, dict[str, Any]] = {}
        for row in rows:
            if isinstance(row, DocumentError):
                yield row
                continue
            if key not in row:
                yield DocumentError(f"task {self.name}: row lacks {key!r}")
                continue
            clip = clips.setdefault(row[key], {**row, **{f: [] for f in self.caption_fields}})
            for f in self.caption_fields:
                clip[f].extend(self._cell(row, f))
        yield from clips.values()

    def _cell(self, doc: Mapping[str, Any], field: str) -> list[str]:
        if field not in doc:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)!r} lacks {field!r}")
        value = doc[field]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        template = str(self.config.options.get("audio_path", "audio/{file_name}"))
        try:
            relative = template.format(**doc)
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row lacks {e} used by audio_path") from None
        return [AudioPart(self.media_path(relative))]

    def target(self, doc: Mapping[str, Any]) -> list[str]:
        refs = [c for f in self.caption_fields for c in self._cell(doc, f)]
        if not refs:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)!r} has no reference caption")
        return refs

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(text=self.target(doc)[0])
