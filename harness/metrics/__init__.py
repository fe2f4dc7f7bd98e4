"""Metrics, each registered by name (see :mod:`harness.metrics.base`); tasks refer to them by name."""

from harness.metrics import asr, asr_zh, caption, image, image_features, qa, text, vqa  # noqa: F401  (register the built-in metrics)
