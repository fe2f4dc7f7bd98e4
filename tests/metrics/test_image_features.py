"""FID, CLIP score, CLIP-I and DINO-I against closed forms, numpy and torchmetrics.

No weights are downloaded: tiny randomly initialised CLIP and DINOv2 models are saved to a temporary
folder and loaded back the way real ones are (``from_pretrained(dir, local_files_only=True)``). Random
weights check the plumbing and arithmetic, not semantic quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.metrics.base import get_metric
from harness.metrics.image_features import fid_from_features, frechet_distance

REPO = Path(__file__).resolve().parents[2]
IMAGES = sorted((REPO / "tasks" / "mmbench_en_dev" / "sample" / "images").glob("*.jpg"))
RAINY = sorted((REPO / "tasks" / "rain100l_derain" / "sample" / "rainy").glob("*.png"))
CLEAN = sorted((REPO / "tasks" / "rain100l_derain" / "sample" / "norain").glob("*.png"))
CAPTIONS = ["an astronaut in a white suit", "a cup of coffee on a saucer", "a rocket on the launch pad",
            "a cat lying on a bed"]


# ---------------------------------------------------------------------------------------------- FID


def _random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def test_frechet_distance_closed_form_for_commuting_covariances():
    # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T commute, so tr sqrt(S1 S2) = sum sqrt(a b) and
    # FID = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    rng = np.random.default_rng(0)
    d = 6
    q = _random_orthogonal(d, rng)
    a, b = rng.uniform(0.5, 3.0, d), rng.uniform(0.5, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)
    # one dimension: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])) == \
        pytest.approx(4.0 + 1.0)
    assert frechet_distance(mu1, np.eye(d), mu1, np.eye(d)) == pytest.approx(0.0, abs=1e-10)


def _fid_by_eigenvalues(x: np.ndarray, y: np.ndarray) -> float:
    """Independent route: tr sqrt(S1 S2) = tr sqrt(R S2 R), R = S1^(1/2), by symmetric eigen-decompositions."""
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root @ s2 @ root)
    tr_covmean = np.sum(np.sqrt(np.clip(inner, 0, None)))
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def test_fid_from_features_matches_an_eigenvalue_computation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 8))
    y = rng.normal(size=(50, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    assert fid_from_features(x, y) == pytest.approx(_fid_by_eigenvalues(x, y), rel=1e-8)


def test_fid_handles_rank_deficient_covariances():
    # fewer samples than dimensions: singular covariances, the sqrtm path must still give a finite value
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 12)), rng.normal(size=(5, 12)) + 1.0
    value = fid_from_features(x, y)
    assert np.isfinite(value)
    assert value == pytest.approx(_fid_by_eigenvalues(x, y), rel=1e-4)


def test_fid_matches_torchmetrics_with_a_custom_feature_extractor():
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Flatten(torch.nn.Module):
        num_features = 12  # 3 x 2 x 2 pixels as features; avoids torchmetrics' 299x299 dummy forward

        def forward(self, images):
            return images.reshape(images.shape[0], -1).double()

    rng = np.random.default_rng(3)
    real = rng.integers(0, 256, size=(40, 3, 2, 2), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-40, 41, size=real.shape), 0, 255).astype(np.uint8)
    metric = FrechetInceptionDistance(feature=Flatten())
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    reference = float(metric.compute())
    ours = fid_from_features(fake.reshape(40, -1).astype(np.float64), real.reshape(40, -1).astype(np.float64))
    assert ours == pytest.approx(reference, rel=1e-6)


# ------------------------------------------------------------------------------------ tiny encoders


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins for bytes that byte-level BPE vocabularies use (GPT-2 / CLIP)."""
    keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    d = tmp_path_factory.mktemp("tiny-clip")
    chars = _byte_alphabet()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {c: i for i, c in enumerate(tokens)}
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")  # no merges: one token per character
    tokenizer = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(1)  # this seed gives the four captions cosines of both signs: max(cos, 0) is exercised
    CLIPModel(config).save_pretrained(d)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    processor.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_dino_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model  # DINOv2's image processor

    d = tmp_path_factory.mktemp("tiny-dinov2")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                             patch_size=8)).save_pretrained(d)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def _images():
    from PIL import Image

    return [np.array(Image.open(p).convert("RGB")) for p in IMAGES]


def _direct_clip(model_dir: Path, images, texts=None):
    """Embeddings straight from transformers, without the harness encoder."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir).eval()
    proc = CLIPProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        out = model.get_image_features(**proc(images=list(images), return_tensors="pt"))
        img = (out if torch.is_tensor(out) else out.pooler_output).double().numpy()
        if texts is None:
            return img
        t = model.get_text_features(**proc(text=list(texts), return_tensors="pt", padding=True))
        return img, (t if torch.is_tensor(t) else t.pooler_output).double().numpy()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_clip_score_matches_torchmetrics(tiny_clip_dir):
    import torch
    from torchmetrics.functional.multimodal import clip_score
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    class Compat(CLIPModel):  # transformers 5 returns ModelOutputs where torchmetrics expects tensors
        def get_image_features(self, *a, **k):
            out = super().get_image_features(*a, **k)
            return out if torch.is_tensor(out) else out.pooler_output

        def get_text_features(self, *a, **k):
            out = super().get_text_features(*a, **k)
            return out if torch.is_tensor(out) else out.pooler_output

    def load():
        return Compat.from_pretrained(tiny_clip_dir), CLIPProcessor.from_pretrained(tiny_clip_dir)

    images = _images()
    tensors = [torch.from_numpy(im).permute(2, 0, 1).contiguous() for im in images]
    m = get_metric("clip_score")
    items = [m.item(im, cap, model_dir=str(tiny_clip_dir)) for im, cap in zip(images, CAPTIONS)]
    assert any(x > 0 for x in items) and any(x == 0 for x in items)  # both sides of the clip at 0
    # per pair: torchmetrics' functional form on one pair is max(100 * cos, 0)
    with torch.no_grad():
        per_pair = [float(clip_score(t, cap, model_name_or_path=load)) for t, cap in zip(tensors, CAPTIONS)]
    assert items == pytest.approx(per_pair, rel=1e-4, abs=1e-4)
    # corpus: the CLIPScore class clips the *mean* at 0, which equals our mean of clipped scores whenever
    # every cosine is positive (as with real CLIP models); compare on those pairs
    positive = [i for i, x in enumerate(items) if x > 0]
    reference = CLIPScore(model_name_or_path=load)
    for i in positive:
        reference.update(tensors[i], CAPTIONS[i])
    assert m.aggregate([items[i] for i in positive]) == pytest.approx(float(reference.compute()), rel=1e-4)
    # and against the raw embeddings
    img, txt = _direct_clip(tiny_clip_dir, images, CAPTIONS)
    assert items == pytest.approx(list(100 * np.maximum(_cos(img, txt), 0)), rel=1e-5, abs=1e-5)


def test_clip_i_and_fid_through_the_encoder_match_direct_embeddings(tiny_clip_dir):
    from PIL import Image

    rainy = [np.asarray(Image.open(p).convert("RGB")) for p in RAINY]
    clean = [np.asarray(Image.open(p).convert("RGB")) for p in CLEAN]
    gen, ref = rainy + _images(), clean + _images()[::-1]  # 8 generated / reference pairs
    a, b = _direct_clip(tiny_clip_dir, gen), _direct_clip(tiny_clip_dir, ref)

    clip_i = get_metric("clip_i")
    items = [clip_i.item(g, r, model_dir=str(tiny_clip_dir)) for g, r in zip(gen, ref)]
    assert items == pytest.approx(list(_cos(a, b)), rel=1e-5)
    assert clip_i.item(clean[0], clean[0], model_dir=str(tiny_clip_dir)) == pytest.approx(1.0, abs=1e-12)

    fid = get_metric("fid")
    fid_items = [fid.item(g, r, encoder="clip", model_dir=str(tiny_clip_dir)) for g, r in zip(gen, ref)]
    assert fid.aggregate(fid_items) == pytest.approx(_fid_by_eigenvalues(a, b), rel=1e-3, abs=1e-6)


def test_dino_i_matches_direct_dinov2_embeddings(tiny_dino_dir):
    import torch
    from transformers import AutoImageProcessor, Dinov2Model

    images = _images()
    pairs = list(zip(images, images[1:] + images[:1]))
    m = get_metric("dino_i")
    items = [m.item(g, r, model_dir=str(tiny_dino_dir)) for g, r in pairs]
    model = Dinov2Model.from_pretrained(tiny_dino_dir).eval()
    proc = AutoImageProcessor.from_pretrained(tiny_dino_dir)
    with torch.no_grad():
        emb = model(**proc(images=images, return_tensors="pt")).pooler_output.double().numpy()
    expected = _cos(emb, np.roll(emb, -1, axis=0))
    assert items == pytest.approx(list(expected), rel=1e-5)
    assert m.aggregate(items) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_missing_weights_name_the_path(tmp_path):
    missing = tmp_path / "no-such-clip"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        get_metric("clip_score").item(np.zeros((8, 8, 3), np.uint8), "a cat", model_dir=str(missing))
    with pytest.raises(ValueError, match="model_dir"):
        get_metric("dino_i").item(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


def test_encoders_are_pluggable():
    from harness.metrics.encoders import ImageEncoder, register_encoder

    class MeanColour:
        """Mean RGB as a 3-d feature: any object with encode_images works."""

        def __init__(self, model_dir=None, device="cpu"):
            pass

        def encode_images(self, images):
            return np.array([np.asarray(im, np.float64).reshape(-1, 3).mean(0) for im in images])

    assert isinstance(MeanColour(), ImageEncoder)
    register_encoder("mean_colour_test", MeanColour)
    images = _images()
    fid = get_metric("fid")
    pairs = zip(images, images[::-1])
    items = [fid.item(g, r, encoder="mean_colour_test", model_dir="unused") for g, r in pairs]
    feats = MeanColour().encode_images(images)
    assert fid.aggregate(items) == pytest.approx(fid_from_features(feats, feats[::-1]), rel=1e-9)
    assert get_metric("clip_i").item(images[0], images[0], encoder=MeanColour()) == pytest.approx(1.0)
