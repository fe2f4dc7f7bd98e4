"""MoE-TTS and WavTokenizer: parity with references written from the spec, released layouts, generation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unimoe.tts import moe_tts, wavtokenizer
from unimoe.tts.checkpoint import (
    SpeechCheckpointError,
    load_moe_tts,
    load_speech_head,
    load_wavtokenizer,
    save_speech_head,
)
from unimoe.tts.moe_tts import MoETTS, Specials

V = 64  # a small code vocabulary keeps the tests fast; the offsets are relative to it


def tiny_tts(**changes) -> MoETTS:
    torch.manual_seed(0)
    model = MoETTS(moe_tts.preset("tiny", odim=V, llm_vocab_size=300, **changes)).eval()
    with torch.no_grad():  # norms away from 1 and non-zero biases, so that parity checks every term
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "norm.weight":
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


# ---------------------------------------------------------------------------------------------------------
# reference MoE-TTS forward, written from the spec (Qwen2 decoder layer; DeepSpeed top-2 MoE MLP)

def ref_rms(x, w, eps=1e-6):
    return w * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def ref_rope(x, pos, theta):
    d = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, d, 2).float() / d)
    ang = pos[:, None].float() * inv[None]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def ref_layer(h, sd, i, cfg):
    p = f"layers.{i}."
    t = h.shape[0]
    nh, nkv, hd = cfg.transformer_attention_heads, cfg.transformer_kv_heads, cfg.head_dim
    x = ref_rms(h, sd[p + "input_layernorm.weight"])
    q = (x @ sd[p + "self_attn.q_proj.weight"].T + sd[p + "self_attn.q_proj.bias"]).view(t, nh, hd).transpose(0, 1)
    k = (x @ sd[p + "self_attn.k_proj.weight"].T + sd[p + "self_attn.k_proj.bias"]).view(t, nkv, hd).transpose(0, 1)
    v = (x @ sd[p + "self_attn.v_proj.weight"].T + sd[p + "self_attn.v_proj.bias"]).view(t, nkv, hd).transpose(0, 1)
    pos = torch.arange(t)
    q, k = ref_rope(q, pos, cfg.rope_theta), ref_rope(k, pos, cfg.rope_theta)
    k, v = k.repeat_interleave(nh // nkv, 0), v.repeat_interleave(nh // nkv, 0)
    scores = q @ k.transpose(1, 2) / math.sqrt(hd)
    scores = scores.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf"))
    att = (scores.softmax(-1) @ v).transpose(0, 1).reshape(t, nh * hd)
    h = h + att @ sd[p + "self_attn.o_proj.weight"].T
    x = ref_rms(h, sd[p + "post_attention_layernorm.weight"])
    gate = (x @ sd[p + "mlp.deepspeed_moe.gate.wg.weight"].T).softmax(-1)
    out = torch.zeros_like(x)
    for n in range(t):
        top = gate[n].topk(2)
        w = top.values / top.values.sum()
        for weight, e in zip(w, top.indices.tolist()):
            ep = f"{p}mlp.deepspeed_moe.experts.deepspeed_experts.{e}."
            y = F.silu(x[n] @ sd[ep + "gate_proj.weight"].T) * (x[n] @ sd[ep + "up_proj.weight"].T)
            out[n] += weight * (y @ sd[ep + "down_proj.weight"].T)
    return h + out


def ref_logits(model: MoETTS, text, prompt):
    sd = {k: v.double() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    cfg, s = model.config, Specials(V)
    emb = lambda ids: sd["audio_embedding.weight"][torch.tensor(ids)]
    txt = lambda ids: sd["qwenvl_embed_tokens.weight"][ids] @ sd["in_fnn.weight"].T + sd["in_fnn.bias"]
    h = torch.cat([emb([s.sopt]), txt(prompt), emb([s.eopt]), emb([s.bos]), txt(text), emb([s.eot, s.sos])])
    for i in range(cfg.transformer_num_blocks):
        h = ref_layer(h, sd, i, cfg)
    return ref_rms(h, sd["norm.weight"]) @ sd["out_fnn.weight"].T + sd["out_fnn.bias"]


def test_moe_tts_matches_the_spec_reference_on_random_weights():
    model = tiny_tts()
    text, prompt = torch.tensor([5, 17, 250, 3]), torch.tensor([9, 11])
    cond = model.condition(text, prompt)
    with torch.no_grad():
        ours, _ = model.decode(cond[None])
    ref = ref_logits(model, text, prompt)
    torch.testing.assert_close(ours[0].double(), ref, rtol=1e-5, atol=1e-5)


def test_special_offsets_are_the_released_ones():
    s = Specials(4096)
    assert (s.bos, s.sos, s.eos, s.pad) == (4096, 4097, 4098, 4099)
    assert (s.sopt, s.eopt, s.sop, s.eop, s.eot) == (4100, 4101, 4102, 4103, 4104)
    full = moe_tts.MoETTSConfig()
    assert (full.num_experts, full.top_k, full.capacity_factor, full.prefix_len) == (4, 2, 1.5, 10)


def test_generation_with_the_cache_equals_full_recomputation():
    model = tiny_tts()
    text = torch.tensor([5, 17, 250, 3])
    codes = model.generate(text, torch.tensor([9]), torch.tensor([1, 2, 3]), max_tokens=12)
    cond = model.condition(text, torch.tensor([9]), torch.tensor([1, 2, 3]))
    seq: list[int] = []
    with torch.no_grad():
        for _ in range(12):  # the released loop: the whole sequence again at every step, top-k 1
            h = torch.cat([cond, model.audio_embedding(torch.tensor(seq, dtype=torch.long))])[None]
            tok = int(model.decode(h)[0][0, -1].argmax())
            if tok == model.specials.eos:
                break
            seq.append(tok)
    assert codes.tolist() == [t % V for t in seq]


def test_capacity_drops_tokens_only_in_training():
    model = tiny_tts(capacity_factor=0.25, min_capacity=1)
    block = model.layers[0].mlp
    x = torch.randn(40, model.config.transformer_attention_dim)
    with torch.no_grad():
        eval_out, _ = block.eval()(x)
        train_out, aux = block.train()(x)
    assert not torch.allclose(eval_out, train_out)  # some tokens lost an expert
    dropped = (train_out == 0).all(-1).sum()
    assert dropped > 0 and aux > 0
    assert (eval_out != 0).any(-1).all()  # dropless at inference


def test_training_step_lowers_the_loss():
    model = tiny_tts().train()
    codes = [torch.tensor([1, 2, 3, 4]), torch.tensor([7, 7])]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        conds = [model.condition(torch.tensor([5, 6, 7])), model.condition(torch.tensor([8, 9]), torch.tensor([1]))]
        out = model(conds, codes)
        first = first if first is not None else out.loss.item()
        opt.zero_grad()
        (out.loss + 0.01 * out.aux_loss).backward()
        opt.step()
    assert out.loss.item() < 0.5 * first


# ---------------------------------------------------------------------------------------------------------
# released key layouts, round trip

def test_released_moe_tts_layout_loads(tmp_path):
    model = tiny_tts()
    keys = set(model.state_dict())
    assert {"qwenvl_embed_tokens.weight", "in_fnn.weight", "in_fnn.bias", "audio_embedding.weight", "norm.weight",
            "out_fnn.weight", "layers.1.mlp.deepspeed_moe.gate.wg.weight",
            "layers.1.mlp.deepspeed_moe.experts.deepspeed_experts.3.down_proj.weight",
            "layers.0.self_attn.q_proj.bias"} <= keys
    torch.manual_seed(1)
    released = {"speech_generator." + k: torch.randn_like(v) for k, v in model.state_dict().items()}
    torch.save(released, tmp_path / "speech_generator.pt")
    loaded = load_moe_tts(tmp_path / "speech_generator.pt", model.config)
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, released["speech_generator." + k])
    del released["speech_generator.norm.weight"]
    torch.save(released, tmp_path / "broken.pt")
    with pytest.raises(SpeechCheckpointError, match="broken.pt.*norm.weight"):
        load_moe_tts(tmp_path / "broken.pt", model.config)


def released_codec_state(config) -> dict[str, torch.Tensor]:
    """A Lightning checkpoint as the WavTokenizer release writes it, from random tensors."""
    shapes = {"backbone.embed.weight": (config.dim, config.codebook_dim, 7), "backbone.embed.bias": (config.dim,),
              "backbone.norm.scale.weight": (4, config.dim), "backbone.norm.shift.weight": (4, config.dim),
              "backbone.final_layer_norm.weight": (config.dim,), "backbone.final_layer_norm.bias": (config.dim,),
              "head.out.weight": (config.n_fft + 2, config.dim), "head.out.bias": (config.n_fft + 2,),
              "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed": (config.codebook_size,
                                                                                 config.codebook_dim)}
    for j in (0, 1, 3, 4):
        for n in (1, 2):
            shapes[f"backbone.pos_net.{j}.norm{n}.weight"] = shapes[f"backbone.pos_net.{j}.norm{n}.bias"] = (config.dim,)
            shapes[f"backbone.pos_net.{j}.conv{n}.weight"] = (config.dim, config.dim, 3)
            shapes[f"backbone.pos_net.{j}.conv{n}.bias"] = (config.dim,)
    for name in ("q", "k", "v", "proj_out"):
        shapes[f"backbone.pos_net.2.{name}.weight"], shapes[f"backbone.pos_net.2.{name}.bias"] = (
            (config.dim, config.dim, 1), (config.dim,))
    shapes["backbone.pos_net.2.norm.weight"] = shapes["backbone.pos_net.2.norm.bias"] = (config.dim,)
    shapes["backbone.pos_net.5.weight"] = shapes["backbone.pos_net.5.bias"] = (config.dim,)
    for i in range(config.num_layers):
        p = f"backbone.convnext.{i}."
        shapes |= {p + "dwconv.weight": (config.dim, 1, 7), p + "dwconv.bias": (config.dim,),
                   p + "norm.scale.weight": (4, config.dim), p + "norm.shift.weight": (4, config.dim),
                   p + "pwconv1.weight": (config.intermediate_dim, config.dim), p + "pwconv1.bias": (config.intermediate_dim,),
                   p + "pwconv2.weight": (config.dim, config.intermediate_dim), p + "pwconv2.bias": (config.dim,),
                   p + "gamma": (config.dim,)}
    torch.manual_seed(2)
    state = {k: 0.05 * torch.randn(s) for k, s in shapes.items()}
    state["head.istft.window"] = torch.hann_window(config.n_fft)
    # entries the decoder does not use: the EMA codebook statistics, the SEANet encoder, the discriminators
    state |= {"feature_extractor.encodec.quantizer.vq.layers.0._codebook.cluster_size": torch.ones(config.codebook_size),
              "feature_extractor.encodec.encoder.model.0.conv.conv.weight_v": torch.randn(32, 1, 7),
              "multiperioddisc.discriminators.0.convs.0.weight": torch.randn(4, 1, 5, 1)}
    return state


def test_released_wavtokenizer_layout_loads_and_decodes(tmp_path):
    config = wavtokenizer.preset("tiny", num_layers=2)
    state = released_codec_state(config)
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "wavtokenizer_large_unify_600_24k.ckpt")
    codec, has_encoder = load_wavtokenizer(tmp_path / "wavtokenizer_large_unify_600_24k.ckpt", config)
    assert not has_encoder  # the released SEANet encoder does not fit the tiny codec's conv encoder
    for k, v in codec.state_dict().items():
        if not k.startswith("feature_extractor.encodec.encoder."):
            torch.testing.assert_close(v, state[k])
    wave = codec.decode(torch.randint(0, config.codebook_size, (2, 13)))
    assert wave.shape == (2, 13 * 600) and torch.isfinite(wave).all()


def test_released_wavtokenizer_geometry():
    config = wavtokenizer.WavTokenizerConfig()
    assert (config.sample_rate, config.hop_length, config.codebook_size, config.codes_per_second) == (24_000, 600, 4096, 40.0)
    assert math.prod(config.downsamples) == config.hop_length
    codec = wavtokenizer.WavTokenizer(wavtokenizer.preset("tiny"))
    codes = torch.randint(0, 4096, (1, 40))
    with torch.no_grad():
        wave = codec.decode(codes)
        assert wave.shape == (1, 24_000)  # one second per 40 codes
        assert codec.encode(wave).shape == (1, 40)


def test_istft_same_padding_equals_overlap_add():
    torch.manual_seed(0)
    n_fft, hop, frames = 16, 4, 7
    istft = wavtokenizer.ISTFT(n_fft, hop)
    spec = torch.randn(1, n_fft // 2 + 1, frames, dtype=torch.complex64)
    window = torch.hann_window(n_fft)
    total = (frames - 1) * hop + n_fft
    y, env = torch.zeros(total), torch.zeros(total)
    for t in range(frames):
        y[t * hop:t * hop + n_fft] += torch.fft.irfft(spec[0, :, t], n_fft) * window
        env[t * hop:t * hop + n_fft] += window ** 2
    pad = (n_fft - hop) // 2
    torch.testing.assert_close(istft(spec)[0], (y / env)[pad:total - pad])


def test_speech_head_folder_round_trip(tmp_path):
    model = tiny_tts()
    codec = wavtokenizer.WavTokenizer(wavtokenizer.preset("tiny"))
    save_speech_head(tmp_path, model, codec, dtype=torch.float32)
    model2, codec2 = load_speech_head(tmp_path)
    for a, b in ((model, model2), (codec, codec2)):
        for (k, v), v2 in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(v, v2, msg=k)
    (tmp_path / "moe_tts.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpeechCheckpointError, match="moe_tts.pt"):
        load_speech_head(tmp_path)


def test_the_shipped_tiny_pair_loads_and_fits_the_budget():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    args = yaml.safe_load((root / "configs" / "model" / "unimoe_tiny.yaml").read_text())["args"]
    folder = root / args["tts_checkpoint"]
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 30 * 2**20
    generator, codec = load_speech_head(folder)
    assert (codec.sample_rate, codec.config.hop_length, codec.config.codebook_size) == (24_000, 600, 4096)
    assert generator.config.odim == 4096 and generator.config.num_experts == 4
