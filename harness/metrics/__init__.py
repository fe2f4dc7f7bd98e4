"""Metrics, each registered by name (see :mod:`harness.metrics.base`); tasks refer to them by name."""

from harness.metrics import (  # noqa: F401  (register the built-in metrics)
    asr,
    asr_zh,
    caption,
    control,
    grouped,
    image,
    image_features,
    judged,
    qa,
    text,
    vqa,
)
