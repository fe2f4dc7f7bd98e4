"""The released WavTokenizer encoder (EnCodec SEANet + the single 4,096-code quantizer): key layout written from
the release's configuration, a checkpoint in that layout round-tripped, weight norm and padding against torch,
and encode -> codes -> decode at the released geometry (24 kHz, 40 codes/s)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unimoe.tts import wavtokenizer
from unimoe.tts.checkpoint import load_wavtokenizer
from unimoe.tts.seanet import SConv1d, WeightNormConv1d

ENC = "feature_extractor.encodec.encoder.model."


def released_encoder_shapes() -> dict[str, tuple[int, ...]]:
    """``feature_extractor.encodec.encoder.*`` of ``EncodecFeatures(dowmsamples=[6, 5, 5, 4])``: SEANet with
    n_filters 32, strides reversed (4, 5, 5, 6), one residual block per stage (inner width halved, 1x1 shortcut),
    a 2-layer LSTM on 512, a last 7-tap conv to 512; every conv weight-normed (``weight_g``/``weight_v``)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        shapes.update({f"{ENC}{name}.conv.conv.weight_g": (cout, 1, 1), f"{ENC}{name}.conv.conv.weight_v": (cout, cin, k),
                       f"{ENC}{name}.conv.conv.bias": (cout,)})

    conv("0", 1, 32, 7)
    width, index = 32, 1
    for stride in (4, 5, 5, 6):
        conv(f"{index}.block.1", width, width // 2, 3)
        conv(f"{index}.block.3", width // 2, width, 1)
        conv(f"{index}.shortcut", width, width, 1)
        conv(f"{index + 2}", width, 2 * width, 2 * stride)  # index + 1 is the ELU
        width, index = 2 * width, index + 3
    for layer in (0, 1):
        shapes |= {f"{ENC}{index}.lstm.weight_ih_l{layer}": (2048, 512), f"{ENC}{index}.lstm.weight_hh_l{layer}": (2048, 512),
                   f"{ENC}{index}.lstm.bias_ih_l{layer}": (2048,), f"{ENC}{index}.lstm.bias_hh_l{layer}": (2048,)}
    conv(f"{index + 2}", 512, 512, 7)
    return shapes


def released_encoder_config(**small_decoder):
    """The released encoder and quantizer; the decoder may be shrunk (its geometry is tested elsewhere)."""
    return wavtokenizer.preset("released", **small_decoder)


def test_the_released_encoder_has_the_released_keys():
    codec = wavtokenizer.WavTokenizer(released_encoder_config())
    own = {k: tuple(v.shape) for k, v in codec.state_dict().items() if k.startswith(ENC)}
    assert own == released_encoder_shapes()
    assert tuple(codec.codebook.embed.shape) == (4096, 512)


def test_released_codec_checkpoint_round_trips_and_encodes_at_the_released_rate(tmp_path):
    config = released_encoder_config(dim=64, intermediate_dim=96, num_layers=1, groups=8)
    template = wavtokenizer.WavTokenizer(config).state_dict()
    torch.manual_seed(3)
    state = {k: 0.05 * torch.randn(v.shape) for k, v in template.items()}
    state["head.istft.window"] = torch.hann_window(config.n_fft)
    # what the released Lightning checkpoint also holds and the codec ignores
    cb = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
    state |= {cb + "inited": torch.ones(1), cb + "cluster_size": torch.ones(4096), cb + "embed_avg": torch.randn(4096, 512),
              "feature_extractor.encodec.decoder.model.0.conv.conv.weight_v": torch.randn(512, 512, 7),
              "multiperioddisc.discriminators.0.convs.0.weight": torch.randn(4, 1, 5, 1)}
    path = tmp_path / "wavtokenizer_large_unify_600_24k.ckpt"
    torch.save({"state_dict": state, "epoch": 1, "global_step": 10}, path)

    codec, has_encoder = load_wavtokenizer(path, config)
    assert has_encoder
    for k, v in codec.state_dict().items():
        torch.testing.assert_close(v, state[k], msg=k)
    wave = torch.randn(2, 24_000) * 0.1
    with torch.no_grad():
        codes = codec.encode(wave)
        assert codes.shape == (2, 40) and codes.dtype == torch.long  # 40 codes per second of 24 kHz audio
        assert 0 <= int(codes.min()) and int(codes.max()) < 4096
        features = codec.encode_features(wave)
        nearest = torch.cdist(features.transpose(1, 2), codec.codebook.embed[None].expand(2, -1, -1)).argmin(-1)
        torch.testing.assert_close(codes, nearest)  # the quantizer: nearest code by Euclidean distance
        decoded = codec.decode(codes)
        assert decoded.shape == (2, 24_000) and torch.isfinite(decoded).all()
        assert codec.encode(wave[:, :24_000 - 7]).shape == (2, 40)  # a partial last window is padded to a frame
    assert codec.sample_rate == 24_000 and config.codes_per_second == 40.0


def test_a_checkpoint_without_the_encoder_still_decodes(tmp_path):
    config = released_encoder_config(dim=64, intermediate_dim=96, num_layers=1, groups=8)
    state = {k: v for k, v in wavtokenizer.WavTokenizer(config).state_dict().items()
             if not k.startswith("feature_extractor.encodec.encoder.")}
    torch.save({"state_dict": state}, tmp_path / "decoder_only.ckpt")
    codec, has_encoder = load_wavtokenizer(tmp_path / "decoder_only.ckpt", config)
    assert not has_encoder and codec.decode(torch.zeros(1, 3, dtype=torch.long)).shape == (1, 1800)


def test_weight_norm_conv_equals_torch_weight_norm():
    torch.manual_seed(0)
    ours = WeightNormConv1d(6, 5, 4, stride=2, dilation=1)
    ref = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(6, 5, 4, stride=2))
    with torch.no_grad():
        ours.weight_g.copy_(ref.parametrizations.weight.original0)
        ours.weight_v.copy_(ref.parametrizations.weight.original1)
        ours.bias.copy_(ref.bias)
    x = torch.randn(2, 6, 17)
    torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize("length, kernel, stride, dilation", [(17, 8, 4, 1), (20, 8, 4, 1), (9, 3, 1, 2), (2, 7, 1, 1)])
def test_sconv_pads_as_encodec(length, kernel, stride, dilation):
    """EnCodec's non-causal SConv1d: total ``k_eff - stride`` reflect padding, the odd sample on the left, plus
    right padding so that the last window is full (zero-extended first when the input is shorter than the pad)."""
    torch.manual_seed(1)
    conv = SConv1d(3, 2, kernel, stride=stride, dilation=dilation)
    x = torch.randn(1, 3, length)
    k_eff = (kernel - 1) * dilation + 1
    total = k_eff - stride
    frames = -(-(length - k_eff + total) // stride) + 1
    extra = (frames - 1) * stride + k_eff - total - length
    left, right = total - total // 2, total // 2 + extra
    grow = max(0, max(left, right) - length + 1)
    padded = F.pad(F.pad(x, (0, grow)), (left, right), mode="reflect")[..., :length + left + right]
    inner = conv.conv.conv
    expected = F.conv1d(padded, inner.weight(), inner.bias, stride=stride, dilation=dilation)
    torch.testing.assert_close(conv(x), expected)
    assert expected.shape[-1] == -(-length // stride)
