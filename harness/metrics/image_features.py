"""Embedding-based image-generation metrics: FID, CLIP score, CLIP-I and DINO-I.

Each item encodes its images with a pluggable encoder (:mod:`harness.metrics.encoders`, options
``encoder``, ``model_dir``, ``device``), so the metrics run with whatever weights are on disk.

- ``fid``: the Fréchet distance between Gaussians fitted to the generated and the reference features
  (Heusel et al. 2017), ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))`` with unbiased covariances. The
  matrix square root is ``scipy.linalg.sqrtm``, as pytorch-fid computes it: if it is not finite, retry
  with ``1e-6`` added to both diagonals; a complex result is accepted only when the imaginary part of its
  diagonal is below ``1e-3`` (numerical noise), and its real part is used. Values depend on the feature
  extractor: only numbers from the same extractor (Inception-v3 pool3 for published FIDs) compare.
- ``clip_score``: ``100 * max(cos(image, text), 0)`` per image, averaged (the torchmetrics formula; its
  ``CLIPScore`` class clips the mean instead of each pair, the same number whenever every cosine is
  positive, as with real CLIP models on natural images). Long prompts are truncated by the tokenizer.
- ``clip_i`` / ``dino_i``: the mean cosine between generated and reference image embeddings (CLIP image
  tower, DINO(v2) pooled CLS), the DreamBooth/editing fidelity scores; not clipped, not scaled.
- ``clip_t``: the mean raw cosine between the image and a caption (MagicBrush's CLIP-T, Emu Edit's
  CLIP_out): not clipped at 0 and not x100, unlike ``clip_score``.
- ``clip_dir``: directional CLIP similarity (InstructPix2Pix, Emu Edit's CLIP_dir): the cosine between the
  change of the unit image embeddings (edited - source) and the change of the unit text embeddings (output
  caption - input caption); 0 when either change is the zero vector (an unchanged image), as torch's
  ``cosine_similarity`` with its epsilon gives.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from harness.metrics.base import Metric, register_metric
from harness.metrics.encoders import ImageEncoder, load_encoder
from harness.metrics.text import mean

SQRTM_EPS = 1e-6
COS_EPS = 1e-8  # torch.nn.functional.cosine_similarity's eps
IMAG_ATOL = 1e-3


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy import linalg

    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: means {mu1.shape} vs {mu2.shape}, "
                         f"covariances {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product: regularise both covariances slightly
        offset = np.eye(sigma1.shape[0]) * SQRTM_EPS
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        worst = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if worst > IMAG_ATOL:
            raise ValueError(f"FID: the covariance square root has an imaginary component of {worst:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``[N, D]`` features."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 feature rows of shape [N, D], got {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def fid_from_features(generated: np.ndarray, reference: np.ndarray) -> float:
    """FID between two sets of features (rows are images)."""
    return frechet_distance(*gaussian_stats(generated), *gaussian_stats(reference))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def fid_item(prediction: Any, target: Any, encoder: str | ImageEncoder = "auto", model_dir: str | None = None,
             device: str = "cpu") -> dict[str, list[float]]:
    """Features of the generated and the reference image; FID is computed over the whole set."""
    feats = load_encoder(encoder, model_dir, device).encode_images([prediction, target])
    return {"generated": feats[0].tolist(), "reference": feats[1].tolist()}


def _fid_aggregate(items: Sequence[dict[str, list[float]]]) -> float:
    generated, reference = (np.array([i[key] for i in items]) for key in ("generated", "reference"))
    return fid_from_features(generated, reference)


def clip_score_item(prediction: Any, target: Any, encoder: str | Any = "clip", model_dir: str | None = None,
                    device: str = "cpu") -> float:
    """100 * max(cosine(image, caption), 0) for the generated image and its prompt (``target``)."""
    enc = load_encoder(encoder, model_dir, device)
    image, text = _unit(enc.encode_images([prediction])[0]), _unit(enc.encode_texts([str(target)])[0])
    return 100.0 * max(float(image @ text), 0.0)


def image_similarity_item(prediction: Any, target: Any, encoder: str | ImageEncoder = "clip",
                          model_dir: str | None = None, device: str = "cpu") -> float:
    """Cosine between the embeddings of the generated and the reference image."""
    a, b = _unit(load_encoder(encoder, model_dir, device).encode_images([prediction, target]))
    return float(a @ b)


def clip_t_item(prediction: Any, target: Any, encoder: str | Any = "clip", model_dir: str | None = None,
                device: str = "cpu") -> float:
    """Cosine between the CLIP embeddings of the image and its caption (``target``)."""
    enc = load_encoder(encoder, model_dir, device)
    image, text = _unit(enc.encode_images([prediction])[0]), _unit(enc.encode_texts([str(target)])[0])
    return float(image @ text)


def clip_dir_item(prediction: Any, target: Mapping[str, Any], encoder: str | Any = "clip",
                  model_dir: str | None = None, device: str = "cpu") -> float:
    """cos(E(edited) - E(source), T(output caption) - T(input caption)) over unit CLIP embeddings; ``target``
    holds ``source`` (the input image), ``input_caption`` and ``output_caption``."""
    enc = load_encoder(encoder, model_dir, device)
    images = _unit(enc.encode_images([target["source"], prediction]))
    texts = _unit(enc.encode_texts([str(target["input_caption"]), str(target["output_caption"])]))
    d_image, d_text = images[1] - images[0], texts[1] - texts[0]
    norms = float(np.linalg.norm(d_image)) * float(np.linalg.norm(d_text))
    return float(d_image @ d_text) / norms if norms > COS_EPS else 0.0


def _dino_item(prediction: Any, target: Any, encoder: str | ImageEncoder = "dinov2",
               model_dir: str | None = None, device: str = "cpu") -> float:
    return image_similarity_item(prediction, target, encoder=encoder, model_dir=model_dir, device=device)


register_metric(Metric("fid", fid_item, _fid_aggregate, higher_is_better=False, stderr="none", version="1",
                       description="Fréchet distance of generated vs reference features (pluggable encoder)"))
register_metric(Metric("clip_score", clip_score_item, mean, version="1",
                       description="CLIPScore: 100 * max(cos(image, prompt), 0), torchmetrics convention"))
register_metric(Metric("clip_i", image_similarity_item, mean, best=1.0, version="1",
                       description="CLIP-I: mean cosine of CLIP image embeddings, generated vs reference"))
register_metric(Metric("dino_i", _dino_item, mean, best=1.0, version="1",
                       description="DINO-I: mean cosine of DINO(v2) CLS embeddings, generated vs reference"))
register_metric(Metric("clip_t", clip_t_item, mean, version="1",
                       description="CLIP-T: mean raw cosine of CLIP image and caption embeddings (MagicBrush)"))
register_metric(Metric("clip_dir", clip_dir_item, mean, best=None, version="1",
                       description="directional CLIP similarity: cos(image change, caption change) (Emu Edit)"))
