"""The image head: projectors against a from-spec reference, released key layouts, the trigger, the DiT's
conditioning, the flow sampler and the generator's files."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from unimoe.imagegen.dit import DiTSpec, TaskDiT
from unimoe.imagegen.generator import ImageGenConfig, ImageGenerator
from unimoe.imagegen.layout import load_projectors
from unimoe.imagegen.projectors import ProjectorSpec, TextFcLayer, VisualGenProjectors
from unimoe.imagegen.sampler import flow_loss, guided, sample_flow
from unimoe.imagegen.trigger import IMAGE_IDS, SPAN_IDS, TASK_IDS, SpanStates, find_spans

SMALL = ProjectorSpec(llm_dim=24, hidden_dim=16, num_layers=2, num_heads=4, image_queries=5, image_dim=12,
                      task_queries=3, task_dim=10, visual_dim=8)


# ---- a reference written from the spec: pre-norm nn.Transformer (ReLU FFN of 4x, final norms), learned queries
def _mha(q_in, kv_in, sd, prefix, heads):
    w, b = sd[prefix + "in_proj_weight"], sd[prefix + "in_proj_bias"]
    d = q_in.shape[-1]
    q, k, v = q_in @ w[:d].T + b[:d], kv_in @ w[d:2 * d].T + b[d:2 * d], kv_in @ w[2 * d:].T + b[2 * d:]
    split = lambda x: x.view(x.shape[0], x.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731
    att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / (d // heads) ** 0.5, dim=-1) @ split(v)
    return att.transpose(1, 2).reshape(q_in.shape) @ sd[prefix + "out_proj.weight"].T + sd[prefix + "out_proj.bias"]


def _ln(x, sd, prefix):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + "weight"], sd[prefix + "bias"], 1e-5)


def _ffn(x, sd, prefix):
    return torch.relu(x @ sd[prefix + "linear1.weight"].T + sd[prefix + "linear1.bias"]) @ \
        sd[prefix + "linear2.weight"].T + sd[prefix + "linear2.bias"]


def reference_text_fc(sd, hidden, embeds, layers, heads):
    x = (hidden + embeds) @ sd["fc.weight"].T + sd["fc.bias"]
    for i in range(layers):
        p = f"tfm.encoder.layers.{i}."
        h = _ln(x, sd, p + "norm1.")
        x = x + _mha(h, h, sd, p + "self_attn.", heads)
        x = x + _ffn(_ln(x, sd, p + "norm2."), sd, p)
    memory = _ln(x, sd, "tfm.encoder.norm.")
    y = sd["query_embs"].expand(hidden.shape[0], -1, -1)
    for i in range(layers):
        p = f"tfm.decoder.layers.{i}."
        h = _ln(y, sd, p + "norm1.")
        y = y + _mha(h, h, sd, p + "self_attn.", heads)
        y = y + _mha(_ln(y, sd, p + "norm2."), memory, sd, p + "multihead_attn.", heads)
        y = y + _ffn(_ln(y, sd, p + "norm3."), sd, p)
    return _ln(y, sd, "tfm.decoder.norm.") @ sd["model.weight"].T + sd["model.bias"]


def _randomise(module):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return module


def test_projectors_match_the_spec_reference_on_random_weights():
    proj = _randomise(VisualGenProjectors(SMALL)).eval()
    hidden, embeds, visual = torch.randn(2, 7, 24), torch.randn(2, 7, 24), torch.randn(2, 9, 24)
    task_h, task_e = torch.randn(2, 3, 24), torch.randn(2, 3, 24)
    task, content, vis = proj(task_h, task_e, hidden, embeds, visual)
    sd = {k.split(".0.", 1)[1]: v for k, v in proj.state_dict().items() if k.startswith("image_hidden_fcs")}
    torch.testing.assert_close(content, reference_text_fc(sd, hidden, embeds, 2, 4), atol=1e-5, rtol=1e-5)
    sd = {k.split(".0.", 1)[1]: v for k, v in proj.state_dict().items() if k.startswith("task_hidden_fcs")}
    torch.testing.assert_close(task, reference_text_fc(sd, task_h, task_e, 2, 4), atol=1e-5, rtol=1e-5)
    lin = proj.visual_hidden_fcs[0].model
    torch.testing.assert_close(vis, visual @ lin.weight.T + lin.bias, atol=1e-5, rtol=1e-5)
    assert content.shape == (2, 5, 12) and task.shape == (2, 3, 10) and vis.shape == (2, 9, 8)


def test_released_geometry_has_the_spec_shapes():
    with torch.device("meta"):
        sd = VisualGenProjectors(ProjectorSpec.full()).state_dict()
    assert sd["image_hidden_fcs.0.fc.weight"].shape == (1536, 3584)
    assert sd["image_hidden_fcs.0.query_embs"].shape == (1, 32, 1536)
    assert sd["image_hidden_fcs.0.model.weight"].shape == (2048, 1536)
    assert sd["image_hidden_fcs.0.tfm.encoder.layers.3.self_attn.in_proj_weight"].shape == (3 * 1536, 1536)
    assert "image_hidden_fcs.0.tfm.decoder.layers.3.multihead_attn.out_proj.weight" in sd
    assert sd["task_hidden_fcs.0.query_embs"].shape == (1, 3, 1536)
    assert sd["task_hidden_fcs.0.model.weight"].shape == (768, 1536)
    assert sd["visual_hidden_fcs.0.model.weight"].shape == (1024, 3584)


@pytest.mark.parametrize("prefix, indexed", [("model.", True), ("", True), ("", False)])
def test_released_layout_round_trips(prefix, indexed):
    source = _randomise(VisualGenProjectors(SMALL))
    released = {}
    for key, value in source.state_dict().items():
        name, rest = key.split(".0.", 1)
        released[f"{prefix}{name}.0.{rest}" if indexed else f"{prefix}{name}.{rest}"] = value.clone()
    released[f"{prefix}layers.0.mlp.gate.weight"] = torch.zeros(2)  # the LM's keys are ignored
    target = VisualGenProjectors(SMALL)
    load_projectors(target, released)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_layout_errors_name_the_key():
    released = dict(VisualGenProjectors(SMALL).state_dict())
    del released["task_hidden_fcs.0.query_embs"]
    with pytest.raises(KeyError, match="task_hidden_fcs.0.query_embs"):
        load_projectors(VisualGenProjectors(SMALL), released)
    released = dict(VisualGenProjectors(SMALL).state_dict())
    released["visual_hidden_fcs.0.model.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="visual_hidden_fcs.0.model.weight"):
        load_projectors(VisualGenProjectors(SMALL), released)


def test_text_fc_layer_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="qformer"):
        TextFcLayer(4, 4, mode="qformer")


# ---- the trigger
def test_span_ids_follow_the_tokenizer():
    assert IMAGE_IDS[0] == 151_672 and len(IMAGE_IDS) == 32 and TASK_IDS == (151_704, 151_705, 151_706)


def test_find_spans_locates_task_then_image_tokens():
    ids = [5, 6, *SPAN_IDS, 7]
    task, image = find_spans(ids)
    assert task == [2, 3, 4] and image == list(range(5, 37))
    assert find_spans([5, 6, 7]) is None
    assert find_spans([*TASK_IDS, 9]) is None  # a task span with no image token does not trigger


@pytest.fixture(scope="module")
def tiny_lm():
    from unimoe.config import UniMoEConfig
    from unimoe.omni import UniMoEOmni
    from unimoe.processor import Processor
    from unimoe.tokenizer import load_tokenizer

    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny_omni")
    return UniMoEOmni(config).eval(), Processor.for_config(config, load_tokenizer())


def test_generate_visualgen_reads_the_spans_and_the_source_features(tiny_lm):
    import numpy as np

    from unimoe.imagegen.trigger import generate_visualgen, span_states
    from unimoe.processor import Image

    model, processor = tiny_lm
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    convo = [{"role": "user", "content": [Image(pixels), "Make the circle red."]}]
    spans = generate_visualgen(model, processor, convo)
    assert spans.forced and spans.task_states.shape == (1, 3, 64) and spans.image_states.shape == (1, 32, 64)
    assert spans.visual_features is not None and spans.visual_features.shape[-1] == 64
    assert torch.equal(spans.image_embeds[0], model.model.embed_tokens(torch.tensor(IMAGE_IDS)))
    # an answer that holds the spans is read where they are, not forced; the text before them is kept
    encoded = processor.encode(convo)
    answer = processor.tokenizer.encode("Sure.", add_special_tokens=False) + list(SPAN_IDS)
    emitted = span_states(model, processor, encoded, answer)
    assert not emitted.forced and emitted.text == "Sure."
    text_only = generate_visualgen(model, processor, [{"role": "user", "content": ["Draw a red square."]}])
    assert text_only.visual_features is None


# ---- DiT and sampler
def test_dit_starts_as_zero_velocity_and_its_conditions_matter():
    spec = DiTSpec(latent_channels=4, latent_size=8, patch_size=2, width=32, depth=2, num_heads=4, task_dim=6,
                   content_dim=5, visual_dim=7, content_tokens=4)
    dit = TaskDiT(spec).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    task, content = torch.randn(2, 3, 6), torch.randn(2, 4, 5)
    assert torch.equal(dit(x, t, task, content), torch.zeros_like(x))  # adaLN-zero
    _randomise(dit)
    base = dit(x, t, task, content)
    assert base.shape == x.shape
    for changed in (dict(task=torch.randn(2, 3, 6)), dict(content=torch.randn(2, 4, 5)),
                    dict(visual=torch.randn(2, 2, 7)), dict(source=torch.randn(2, 4, 8, 8))):
        args = dict(task=task, content=content) | changed
        assert not torch.allclose(dit(x, t, **args), base), changed
    # classifier-free guidance's null conditions: dropped rows ignore the task and content they were given
    drop = torch.tensor([True, False])
    null_task, null_content = dit.drop_conditions(task, content, drop)
    other_task, other_content = dit.drop_conditions(torch.randn(2, 3, 6), torch.randn(2, 4, 5), drop)
    dropped, other = dit(x, t, null_task, null_content), dit(x, t, other_task, other_content)
    assert torch.equal(dropped[0], other[0]) and not torch.allclose(dropped[1], other[1])
    torch.testing.assert_close(dropped[1], base[1])


def test_dit_content_reaches_the_modulation_as_well_as_the_cross_attention():
    spec = DiTSpec(latent_channels=4, latent_size=8, patch_size=2, width=32, depth=1, num_heads=4, task_dim=6,
                   content_dim=5, visual_dim=7, content_tokens=4)
    dit = _randomise(TaskDiT(spec)).eval()
    x, t, task, content = torch.randn(1, 4, 8, 8), torch.rand(1), torch.randn(1, 3, 6), torch.randn(1, 4, 5)
    for block in dit.blocks:  # with cross-attention silenced, the content still steers the output
        block.cross_attn.forward = lambda q, k, v, need_weights=False: (torch.zeros_like(q), None)
    assert not torch.allclose(dit(x, t, task, content), dit(x, t, task, torch.randn(1, 4, 5)))


def test_flow_sampler_reaches_the_data_under_the_exact_velocity():
    data = torch.randn(1, 2, 4, 4)
    exact = lambda x, t: (data - x) / (1 - t).view(-1, 1, 1, 1)  # noqa: E731  (point-mass target)
    torch.testing.assert_close(sample_flow(exact, tuple(data.shape), steps=8), data, atol=1e-5, rtol=1e-5)
    assert float(flow_loss(exact, data, torch.Generator().manual_seed(0))) < 1e-8
    with pytest.raises(ValueError, match="steps"):
        sample_flow(exact, tuple(data.shape), steps=0)


def test_guidance_extrapolates_from_the_unconditional_velocity():
    x, t = torch.randn(1, 2, 4, 4), torch.rand(1)
    cond = lambda x, t: x + 1  # noqa: E731
    uncond = lambda x, t: x  # noqa: E731
    assert guided(cond, uncond, 1.0) is cond
    torch.testing.assert_close(guided(cond, uncond, 3.0)(x, t), x + 3)
    torch.testing.assert_close(guided(cond, uncond, 0.0)(x, t), x)


# ---- the generator's files
def _tiny_generator():
    config = ImageGenConfig(image_size=16, vae_factor=2, sample_steps=3,
                            projectors=ProjectorSpec(llm_dim=24, hidden_dim=16, num_layers=1, image_queries=4,
                                                     image_dim=8, task_dim=8, visual_dim=8),
                            dit=DiTSpec(latent_channels=4, latent_size=8, width=32, depth=1, task_dim=8,
                                        content_dim=8, visual_dim=8, content_tokens=4))
    return _randomise(ImageGenerator(config)).eval()


def _spans(visual: bool) -> SpanStates:
    g = torch.Generator().manual_seed(3)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return SpanStates("", r(1, 3, 24), r(1, 3, 24), r(1, 32, 24), r(1, 32, 24), r(1, 6, 24) if visual else None, True)


def test_generator_saves_loads_and_is_seed_deterministic(tmp_path):
    gen = _tiny_generator()
    source = torch.rand(3, 16, 16) * 2 - 1
    image = gen.generate_image(_spans(True), source, seed=1)
    assert image.shape == (16, 16, 3) and image.dtype.name == "uint8"
    gen.save(tmp_path)
    loaded = ImageGenerator.load(tmp_path)
    assert (loaded.generate_image(_spans(True), source, seed=1) == image).all()
    assert (loaded.generate_image(_spans(False), seed=1) != loaded.generate_image(_spans(False), seed=2)).any()
    guided_image = loaded.generate_image(_spans(True), source, seed=1, guidance_scale=3.0)
    assert (guided_image != image).any()
    loaded.config.guidance_scale = 3.0  # the configured scale is the default
    assert (loaded.generate_image(_spans(True), source, seed=1) == guided_image).all()
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ImageGenerator.load(tmp_path)


def test_generator_rejects_a_latent_size_that_does_not_fit():
    with pytest.raises(ValueError, match="latent_size"):
        ImageGenerator(ImageGenConfig(image_size=64, vae_factor=4, dit=DiTSpec(latent_size=8)))


def test_patch_autoencoder_fits_scenes_in_closed_form():
    from harness.metrics.base import get_metric
    from unimoe.imagegen.generator import to_uint8, to_unit
    from unimoe.imagegen.vae import PatchAutoencoder
    from unimoe.train.omniworld_images import KINDS, check_scene, iter_items

    train = torch.stack([to_unit(t, 64) for _, t, _ in iter_items(KINDS, 30, "train", 0)])
    vae = PatchAutoencoder(latent_channels=8, factor=4).fit(train)
    assert float(vae.encode(train).std()) == pytest.approx(1.0, abs=1e-4)
    for item, target, _ in iter_items(("draw",), 10, "test", 0):
        z = vae.encode(to_unit(target, 64)[None])
        assert z.shape == (1, 8, 16, 16)
        restored = to_uint8(vae.decode(z)[0])
        assert get_metric("psnr").item(restored, target) > 25
        assert all(check_scene(restored, item.shape, item.colour, item.corner).values())


def test_span_whitening_gives_weak_and_strong_prompt_facts_the_same_size_per_prompt_type():
    config = ImageGenConfig(image_size=16, vae_factor=2, standardize_spans=True, whitening_rank=8,
                            projectors=ProjectorSpec(llm_dim=24, hidden_dim=16, num_layers=1, image_queries=4,
                                                     image_dim=8, task_dim=8, visual_dim=8),
                            dit=DiTSpec(latent_channels=4, latent_size=8, width=32, depth=1, task_dim=8,
                                        content_dim=8, visual_dim=8, content_tokens=4))
    gen = ImageGenerator(config)
    g = torch.Generator().manual_seed(0)
    common = torch.randn(1, 35, 24, generator=g) * 10  # the prompt-independent part dominates, as in a small LM
    strong, weak = torch.randn(35, 24, generator=g), torch.randn(35, 24, generator=g)
    weak -= (weak * strong).sum() / (strong * strong).sum() * strong  # two orthogonal facts, one 15x smaller
    a, b = (torch.randint(0, 2, (100, 1, 1), generator=g).float() * 2 - 1 for _ in range(2))
    spans = common + a * strong + b * weak / 15
    with_image = torch.arange(100) >= 50
    spans[with_image] += 5 * torch.randn(50, 35, 24, generator=g)  # prompts with an image: far larger spread
    gen.fit_span_statistics(spans[:, :3], spans[:, 3:], with_image)
    task, image = gen.whiten(spans[:50, :3], spans[:50, 3:], with_image=False)
    white = torch.cat([task, image], dim=1).flatten(1)
    along = lambda fact: white @ (fact.flatten() / fact.norm())  # noqa: E731
    assert along(weak).std().item() == pytest.approx(along(strong).std().item(), rel=0.15)  # 1/15 before
    torch.testing.assert_close(white.mean(0), torch.zeros(35 * 24), atol=1e-3, rtol=0)
    assert white.pow(2).mean().item() == pytest.approx(1.0, rel=0.05)  # unit spread per coordinate on average
    one = SpanStates("", spans[:1, :3], torch.zeros(1, 3, 24), spans[:1, 3:], torch.zeros(1, 32, 24), None, True)
    conditioned = gen.conditions(one)["content"]  # no visual features: the text-only row applies
    gen.span_mean[1] += 1e3
    torch.testing.assert_close(gen.conditions(one)["content"], conditioned)
    plain = ImageGenerator(dataclasses.replace(config, standardize_spans=False))
    plain.load_state_dict({k: v for k, v in gen.state_dict().items() if not k.startswith("span_")})
    assert not torch.allclose(conditioned, plain.conditions(one)["content"])
