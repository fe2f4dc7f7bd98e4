"""Tasks: documents in, typed requests out; responses in, scored samples out.

A benchmark is a YAML file under ``configs/task/`` (declarative: data source, prompt, extraction rule,
metrics, the paper's score) plus, only where the benchmark needs it, a small subclass of :class:`Task`
registered under a plugin name. The base class implements the common case (one prompt template, one
extraction rule, per-sample metrics, mean aggregation with clustered standard errors) so most plugins
override one or two methods.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from harness.api import (
    DocumentError,
    GenerationConfig,
    ImagePart,
    Message,
    Part,
    Reference,
    Request,
    Response,
    TextPart,
    stable_hash,
)
from harness.extract.base import ExtractContext, get_rule
from harness.metrics.base import get_metric
from harness.registry import Registry

TASK_PLUGINS: Registry[type["Task"]] = Registry("task plugin", entry_point_group="unimoe_harness.tasks")

TASKS_ROOT = Path(__file__).resolve().parent.parent / "tasks"
SCORING_MODES = ("generate", "likelihood")


# --------------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class DatasetSpec:
    hub_id: str | None = None
    config: str | None = None
    split: str = "test"
    sample: str | None = None  # folder (relative to tasks/) holding docs.jsonl + media for data=sample
    media_dir: str | None = None  # where the full benchmark's media live (user supplied)
    revision: str | None = None


UNANSWERED_POLICIES = ("scored", "excluded")
UNANSWERED_NOTE = "unanswered (empty response): left out of every metric, as the reference does"
_UNHASHED_DEFAULTS = {"response_strip": False, "unanswered": "scored", "scoring": "generate"}


@dataclass(frozen=True)
class TaskConfig:
    name: str
    group: str
    version: str = "1"
    plugin: str = "generic"
    dataset: DatasetSpec = DatasetSpec()
    doc_id: str = "id"
    prompt: Mapping[str, Any] = field(default_factory=dict)
    generation: GenerationConfig = GenerationConfig()
    output: str = "text"
    extract: str = "identity"
    metrics: tuple[str, ...] = ("accuracy",)
    primary_metric: str = "accuracy"
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    scale: float = 100.0  # reported value = aggregate * scale (papers report percentages)
    cluster_key: str | None = None
    breakdowns: tuple[str, ...] = ()
    paper_score: float | None = None
    judge: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # plugin-specific knobs
    # The protocol's handling of the raw text before scoring (see Task.process_response): lmms-eval strips
    # every generate_until response before process_results; some references leave an empty one out.
    response_strip: bool = False
    unanswered: str = "scored"  # "scored": an empty response goes to the rule; "excluded": left out of metrics
    # generate: the model writes an answer; likelihood: a multiple-choice answer is the option the model finds
    # most likely after the prompt (lm-eval's multiple_choice; see harness.likelihood_scoring)
    scoring: str = "generate"

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "TaskConfig":
        d = dict(d)
        if "dataset" in d:
            d["dataset"] = DatasetSpec(**(d["dataset"] or {}))
        if "generation" in d:
            gen = dict(d["generation"] or {})
            gen["until"] = tuple(gen.get("until", ()) or ())
            d["generation"] = GenerationConfig(**gen)
        for key in ("metrics", "breakdowns"):
            if key in d:
                d[key] = tuple(d[key] or ())
        d["version"] = str(d.get("version", "1"))
        if d.get("unanswered", "scored") not in UNANSWERED_POLICIES:
            raise ValueError(f"task {d.get('name')!r}: unanswered must be one of {UNANSWERED_POLICIES}, "
                             f"got {d['unanswered']!r}")
        if d.get("scoring", "generate") not in SCORING_MODES:
            raise ValueError(f"task {d.get('name')!r}: scoring must be one of {SCORING_MODES}, got {d['scoring']!r}")
        known = set(TaskConfig.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"task {d.get('name')!r}: unknown config keys {sorted(unknown)}")
        return TaskConfig(**d)

    def hash(self) -> str:
        """Fingerprint of everything that changes requests or scores; part of cache keys and results."""
        d = dataclasses.asdict(self)
        d.pop("paper_score", None)
        for key, default in _UNHASHED_DEFAULTS.items():  # added later: configs that keep the default keep their hash
            if d[key] == default:
                del d[key]
        return stable_hash(d)


# --------------------------------------------------------------------------------------------------
# Scored samples and aggregated values


@dataclass
class Sample:
    """One document's journey: request, response, extracted answer, metric items, or the error that stopped it."""

    doc_id: str
    request_hash: str = ""
    response: Response | None = None
    prediction: Any = None
    target: Any = None
    items: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # no usable response (media, row, model failure): excluded from metrics
    parse_error: str | None = None  # a response that the rule could not parse: scored per protocol
    cluster: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # breakdown fields copied from the doc
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "request_hash": self.request_hash,
            "response": self.response.to_dict() if self.response else None,
            "prediction": self.prediction,
            "target": self.target,
            "items": self.items,
            "error": self.error,
            "parse_error": self.parse_error,
            "cluster": self.cluster,
            "fields": self.fields,
            "cached": self.cached,
        }


@dataclass
class MetricValue:
    value: float
    stderr: float | None
    n: int
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "stderr": self.stderr, "n": self.n, "higher_is_better": self.higher_is_better}


# --------------------------------------------------------------------------------------------------
# Data


def resolve_inside(root: Path, relative: str) -> Path:
    """Join a dataset-supplied path to its root, refusing anything that escapes the root."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise DocumentError(f"path {relative!r} escapes the dataset root {root}")
    return candidate


def read_jsonl(path: Path) -> Iterator[dict[str, Any] | DocumentError]:
    """Yield rows; a malformed line yields a DocumentError naming file and line instead of stopping the run."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("row is not a JSON object")
                yield row
            except ValueError as e:
                yield DocumentError(f"{path}:{lineno}: malformed row ({e})")


# --------------------------------------------------------------------------------------------------
# The task


class Task:
    """Generic task: prompt template over doc fields, one rule, per-sample metrics averaged."""

    def __init__(self, config: TaskConfig, data: str = "sample", data_dir: str | None = None, seed: int = 0):
        self.config = config
        self.data = data
        self.data_dir = data_dir
        self.seed = seed
        self.judge: Any = None  # attached by the runner when the run configures one (see harness.judges)

    def judge_identity(self) -> dict[str, Any] | None:
        """Who judged (model, host, prompt version) and how often; recorded in results.json."""
        if self.judge is None:
            return None
        return {**self.judge.identity(), "stats": self.judge.stats.as_dict()}

    # ---- identity
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def media_root(self) -> Path:
        """Root that relative media paths in docs are resolved against (and confined to)."""
        if self.data == "sample":
            if not self.config.dataset.sample:
                raise DocumentError(f"task {self.name} has no sample fixture")
            return TASKS_ROOT / self.config.dataset.sample
        root = self.config.dataset.media_dir or self.data_dir
        if root is None:
            raise DocumentError(f"task {self.name}: data=full needs dataset.media_dir or data_dir for its media")
        return Path(root)

    def data_source(self) -> str:
        """Human-readable provenance recorded in results.json."""
        if self.data == "sample":
            return f"sample:tasks/{self.config.dataset.sample}"
        if self.data_dir:
            return f"local:{self.data_dir}"
        ds = self.config.dataset
        return f"hub:{ds.hub_id}" + (f"/{ds.config}" if ds.config else "") + f"[{ds.split}]"

    # ---- documents
    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        if self.data == "sample":
            yield from read_jsonl(self.media_root / "docs.jsonl")
        elif self.data_dir:
            yield from self._local_docs(Path(self.data_dir))
        else:
            yield from self._hub_docs()

    def _local_docs(self, path: Path) -> Iterator[dict[str, Any] | DocumentError]:
        if path.is_dir():
            candidates = [path / "docs.jsonl", *sorted(path.glob("*.jsonl")), *sorted(path.glob("*.parquet"))]
            path = next((p for p in candidates if p.exists()), path / "docs.jsonl")
        if not path.exists():
            raise FileNotFoundError(f"task {self.name}: no documents at {path}")
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq  # datasets' dependency

            yield from pq.read_table(path).to_pylist()
        else:
            yield from read_jsonl(path)

    def _hub_docs(self) -> Iterator[dict[str, Any]]:
        ds = self.config.dataset
        if not ds.hub_id:
            raise FileNotFoundError(f"task {self.name} has no hub dataset; pass data_dir=<folder>")
        try:
            import datasets
        except ImportError as e:  # pragma: no cover - optional extra
            raise RuntimeError("data=full from the hub needs `pip install unimoe-harness[hub]`") from e
        try:
            dset = datasets.load_dataset(ds.hub_id, ds.config, split=ds.split, revision=ds.revision)
        except Exception as e:
            raise FileNotFoundError(
                f"task {self.name}: could not load {ds.hub_id} ({ds.config}, {ds.split}): {e}. "
                f"Download it and pass data_dir=<folder> (and dataset.media_dir for media)."
            ) from e
        yield from dset

    def doc_id(self, doc: Mapping[str, Any]) -> str:
        try:
            return str(doc[self.config.doc_id])
        except KeyError:
            raise DocumentError(f"task {self.name}: row has no id field {self.config.doc_id!r}") from None

    # ---- requests
    def media_path(self, relative: str) -> str:
        return str(resolve_inside(self.media_root, relative))

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        p = self.config.prompt
        try:
            return "".join(str(p.get(k, "")).format(**doc) for k in ("pre", "template", "post"))
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row lacks field {e} used by the prompt") from None

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        """Media placed before the text, in the order the prompt config names them."""
        parts: list[Part] = []
        for key in self.config.prompt.get("images", ()):
            if doc.get(key):
                parts.append(ImagePart(self.media_path(doc[key])))
        return parts

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def build_request(self, doc: Mapping[str, Any]) -> Request:
        messages = []
        system = self.config.prompt.get("system")
        if system:
            messages.append(Message.system(system))
        messages.append(Message.user(*self.media_parts(doc), TextPart(self.prompt_text(doc))))
        return Request(
            task=self.name,
            doc_id=self.doc_id(doc),
            messages=tuple(messages),
            generation=self.config.generation,
            output=self.config.output,  # type: ignore[arg-type]
            choices=self.choices(doc),
            reference=self.oracle(doc),
        )

    # ---- scoring
    def target(self, doc: Mapping[str, Any]) -> Any:
        return doc.get(self.config.options.get("target_field", "answer"))

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        """The gold answer as a good model would write it (used by the ``oracle`` adapter)."""
        return Reference(text=str(self.target(doc)))

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        return ExtractContext(options={}, doc=doc, seed=self.seed)

    def extract(self, doc: Mapping[str, Any], response: Response) -> Any:
        return get_rule(self.config.extract)(response.text, self.extract_context(doc))

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        opts = self.config.metric_options
        return {m: get_metric(m).item(prediction, target, **opts.get(m, {})) for m in self.config.metrics}

    def process_response(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        """What the runner calls with a model's response: the protocol's text preparation, the same for every
        plugin, then :meth:`process`. With ``response_strip`` the text loses its surrounding white space (the
        sample log keeps the text as scored); with ``unanswered: excluded`` a text that is empty (after the
        strip) becomes an error-marked sample that no metric counts."""
        if self.config.response_strip and response.text:
            response = dataclasses.replace(response, text=response.text.strip())
        if self.config.unanswered == "excluded" and response.error is None and not response.text:
            return Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                          error=UNANSWERED_NOTE)
        return self.process(doc, response, request_hash)

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        """Response -> scored Sample. Extraction failures are kept as parse errors and scored per protocol."""
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response)
        sample.cluster = str(doc[self.config.cluster_key]) if self.config.cluster_key else None
        sample.fields = {k: doc.get(k) for k in self.config.breakdowns}
        sample.target = self.target(doc)
        if response.error:
            sample.error = response.error
            return sample
        if not (response.text or "").strip() and self.config.output == "text":
            sample.parse_error = "empty response"
        # a likelihood-scored answer is already the chosen option, with nothing to extract
        sample.prediction = response.text if self.config.scoring == "likelihood" else self.extract(doc, response)
        if sample.prediction in (None, "") and sample.parse_error is None:
            sample.parse_error = f"rule {self.config.extract} found no answer"
        sample.items = self.score(doc, sample.prediction, sample.target)
        return sample

    def finalize(self, samples: list[Sample]) -> Sequence[Sample]:
        """Called with every processed sample, in document order, just before :meth:`aggregate`: the place for
        scoring that needs all samples at once (CharXiv's judge grades five answers per call). Fills in
        ``items``/``error`` in place and returns the samples it changed, whose records the runner appends to
        the sample log again (a reader keeps a doc's last record). A no-op by default."""
        return ()

    def aggregate(self, samples: Sequence[Sample]) -> dict[str, MetricValue]:
        """Aggregate metric items over scored samples (errors excluded), with standard errors."""
        from harness.metrics.uncertainty import stderr_for

        scored = [s for s in samples if s.error is None]
        out: dict[str, MetricValue] = {}
        for name in self.config.metrics:
            metric = get_metric(name)
            items = [s.items[name] for s in scored]
            value = metric.aggregate(items) if items else math.nan
            se = stderr_for(metric, items, [s.cluster for s in scored], seed=self.seed) if items else None
            scale = self.config.scale
            out[name] = MetricValue(
                value * scale, None if se is None else se * scale, len(items), metric.higher_is_better
            )
        return out

    def breakdown(self, samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
        """Primary metric per value of each breakdown field (e.g. Video-MME duration); logged, not ranked."""
        result: dict[str, dict[str, float]] = {}
        metric = get_metric(self.config.primary_metric)
        scored = [s for s in samples if s.error is None]
        for key in self.config.breakdowns:
            groups: dict[str, list[Any]] = {}
            for s in scored:
                groups.setdefault(str(s.fields.get(key)), []).append(s.items[self.config.primary_metric])
            result[key] = {g: metric.aggregate(v) * self.config.scale for g, v in sorted(groups.items())}
        return result


TASK_PLUGINS.register("generic", Task)
TASK_PLUGINS.register("lmeval", "harness.lmeval.task:LMEvalTask")


def iter_ok(rows: Iterable[Any]) -> Iterator[Any]:
    """Skip DocumentError placeholders (used by tools that only want good rows)."""
    return (r for r in rows if not isinstance(r, DocumentError))
