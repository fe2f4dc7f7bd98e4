"""omniworld tasks: one per modality over the generated test split (see :mod:`unimoe.train.omniworld`).

``data=sample`` evaluates a small test split (``options.sample_n`` items per modality), ``data=full`` the
full one (``options.full_n``). Splits are generated on first use into the user cache folder, keyed by the
generator version, seed and size, and reused afterwards. Multiple choice is extracted with the generic
option-letter rule, short answers are compared after exact-match normalisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import AudioPart, DocumentError, ImagePart, Part, Reference, Response, VideoPart
from harness.extract.base import ExtractContext, get_rule
from harness.task import Task, read_jsonl


def split_dir(seed: int, n: int) -> Path:
    from unimoe.train.omniworld import VERSION

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "unimoe" / "omniworld" / f"v{VERSION}-seed{seed}-test-n{n}"


class OmniWorld(Task):
    @property
    def size(self) -> int:
        opts = self.config.options
        return int(opts.get("sample_n", 20) if self.data == "sample" else opts.get("full_n", 100))

    @property
    def media_root(self) -> Path:
        return split_dir(int(self.config.options.get("seed", 0)), self.size)

    def data_source(self) -> str:
        from unimoe.train.omniworld import VERSION

        return f"generated:omniworld-v{VERSION}/test/seed{self.config.options.get('seed', 0)}/n{self.size}"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        root = self.media_root
        if not (root / "docs.jsonl").is_file():
            from unimoe.train.omniworld import generate

            generate(root, split="test", n=self.size, seed=int(self.config.options.get("seed", 0)))
        modality = self.config.options["modality"]
        for row in read_jsonl(root / "docs.jsonl"):
            if isinstance(row, DocumentError) or row.get("modality") == modality:
                yield row

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        from unimoe.train.omniworld import prompt_text

        return prompt_text(dict(doc))

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        kinds = {"image": ImagePart, "video": lambda p: VideoPart(p, fps=4.0, max_frames=8), "audio": AudioPart}
        return [kinds[k](self.media_path(v)) for k, v in doc["media"].items()]

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(o.split(".", 1)[0] for o in doc.get("options", ()))

    def extract(self, doc: Mapping[str, Any], response: Response) -> str:
        if "options" in doc:
            options = {o.split(".", 1)[0]: o.split(". ", 1)[1] for o in doc["options"]}
            return get_rule("option_letter")(response.text, ExtractContext(options=options, doc=doc))
        return get_rule("strip")(response.text, ExtractContext(doc=doc))

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(text=str(doc["answer"]))
