"""Model adapters, found by name. Built-ins are lazy strings; outside packages use the
``unimoe_harness.models`` entry-point group."""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import ModelAdapter
from harness.registry import Registry

MODELS: Registry[Any] = Registry("model adapter", entry_point_group="unimoe_harness.models")
MODELS.register("random", "harness.models.reference:RandomModel")
MODELS.register("oracle", "harness.models.reference:OracleModel")
MODELS.register("unimoe", "harness.models.unimoe:UniMoEAdapter")
MODELS.register("openai", "harness.models.openai:OpenAIModel")
MODELS.register("hf", "harness.models.hf:HFAdapter")
MODELS.register("faster_whisper", "harness.models.faster_whisper:FasterWhisperAdapter")


def build_model(config: Mapping[str, Any]) -> ModelAdapter:
    """Instantiate the adapter a model config names (``adapter`` + ``args``)."""
    factory = MODELS.get(config.get("adapter", config["name"]))
    return factory(name=config["name"], **dict(config.get("args") or {}))
