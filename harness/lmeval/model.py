"""Our adapters as an lm-eval model: ``unimoe_harness``.

``lm_eval.simple_evaluate(model="unimoe_harness", model_args="model=unimoe_tiny", ...)`` after importing this
module, or from the shell ``unimoe-harness-lm-eval --model unimoe_harness --model_args model=unimoe_tiny
--tasks ...`` (lm-eval's own command line with this model registered; lm-eval 0.4 discovers no models from
other packages). ``model`` names a config under configs/model/; every other model argument overrides one of
its ``args`` (``model=hf,path=/models/x``). Requests are built exactly as ``task=lmeval`` builds them.
"""

from __future__ import annotations

import logging
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval's built-in models first: it loads them only into an empty registry)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness.api import LoglikelihoodRequest, ModelAdapter
from harness.lmeval.requests import generation_request

log = logging.getLogger(__name__)
LM_EVAL_SETTINGS = ("batch_size", "max_batch_size", "device")  # passed by lm-eval to every model


@register_model("unimoe_harness")
class HarnessLM(LM):
    def __init__(self, model: str = "unimoe_tiny", batch_size: int | str = 1, **args: Any):
        super().__init__()
        from harness.evaluate import _model_config
        from harness.models import build_model

        config = _model_config(model)
        overrides = {k: v for k, v in args.items() if k not in LM_EVAL_SETTINGS}
        config["args"] = {**(config.get("args") or {}), **overrides}
        self.adapter = build_model(config)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 1

    @classmethod
    def wrapping(cls, adapter: ModelAdapter, batch_size: int = 1) -> HarnessLM:
        """An lm-eval model around an adapter already built (``simple_evaluate(model=...)`` takes it)."""
        lm = cls.__new__(cls)
        LM.__init__(lm)
        lm.adapter, lm.batch_size = adapter, batch_size
        return lm

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        ours = [generation_request(r.task_name, r.doc_id, *r.args[:2]) for r in requests]
        out: list[str] = []
        for start in range(0, len(ours), self.batch_size):
            for request, response in zip(ours[start:start + self.batch_size],
                                         self.adapter.generate(ours[start:start + self.batch_size])):
                if response.error:
                    log.warning("%s/%s: %s", request.task, request.doc_id, response.error)
                out.append(response.text)
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        if not hasattr(self.adapter, "loglikelihood"):
            raise NotImplementedError(f"model {self.adapter.name} cannot score text (no loglikelihood)")
        return self.adapter.loglikelihood([LoglikelihoodRequest(*r.args[:2]) for r in requests])

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError("unimoe_harness does not bridge loglikelihood_rolling (perplexity) tasks")
