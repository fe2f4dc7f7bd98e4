"""Video-MME without subtitles, as the paper-era lmms-eval task ran it (``tasks/videomme/utils.py``).

Prompt = instruction, question, the options as stored ("A. ..." one per line), then the post-prompt; the
instruction mentions subtitles although none are given (verbatim from the protocol). Videos are
``<media_root>/data/<videoID>.mp4`` (lmms-eval also accepts ``.MP4`` and ``.mkv``), sampled at 1 fps
with a frame cap by the model adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from harness.api import DocumentError, Part, VideoPart
from harness.extract.base import ExtractContext
from harness.task import Task

VIDEO_SUFFIXES = (".mp4", ".MP4", ".mkv")


class VideoMME(Task):
    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        return super().prompt_text({**doc, "options": "\n".join(doc["options"])})

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        opts = self.config.options
        return [VideoPart(self.video_path(doc), fps=opts.get("fps", 1.0), max_frames=opts.get("max_frames", 64))]

    def video_path(self, doc: Mapping[str, Any]) -> str:
        stem = f"data/{doc['videoID']}"
        candidates = [self.media_path(stem + suffix) for suffix in VIDEO_SUFFIXES]
        # A missing file is not an error here: the runner's media check reports it against the sample.
        return next((c for c in candidates if Path(c).is_file()), candidates[0])

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(option.split(".", 1)[0].strip() for option in doc["options"])

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        options = {}
        for option in doc["options"]:
            letter, sep, text = option.partition(".")
            if not sep:
                raise DocumentError(f"task {self.name}: option {option!r} is not 'X. text'")
            options[letter.strip()] = text.strip()
        return ExtractContext(options=options, doc=doc, seed=self.seed)

