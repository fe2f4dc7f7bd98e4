"""Routing probe: its running aggregates equal a direct count of the routing the MoE blocks returned."""

import json

import torch

from unimoe.config import UniMoEConfig
from unimoe.model import UniMoEForCausalLM, generate
from unimoe.probes import MODALITIES, RoutingProbe


def capture_routing(model):
    """Forward hooks on every MoE block: the raw (layer, RoutingInfo) stream, independent of the probe."""
    seen = []
    hooks = [layer.mlp.register_forward_hook(lambda mod, args, out, i=i: seen.append((i, out[1])))
             for i, layer in enumerate(model.model.layers)]
    return seen, hooks


def test_probe_counts_match_a_direct_count():
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny")
    model = UniMoEForCausalLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :4] = 0  # left padding: never counted
    modality = torch.randint(0, len(MODALITIES), (2, 12))
    probe = RoutingProbe.for_model(config)
    seen, hooks = capture_routing(model)
    with torch.no_grad():
        model(ids, attention_mask=mask, probe=probe, modality_ids=modality)
    for h in hooks:
        h.remove()

    counts = probe.counts()
    real = mask.bool().flatten()
    for m, name in enumerate(MODALITIES):
        tokens = modality.flatten()[real] == m
        if not tokens.any():
            assert name not in counts
            continue
        entry = counts[name]
        assert entry["tokens"] == int(tokens.sum())
        for layer, routing in seen:
            ids_l = routing.expert_ids.reshape(-1, routing.expert_ids.shape[-1])[real][tokens]
            usage = [int((ids_l == e).sum()) for e in range(probe.num_experts)]
            assert entry["expert_tokens"][layer] == usage
            assert entry["null_tokens"][layer] == int(routing.null_chosen.flatten()[real][tokens].sum())
            assert entry["active_experts_sum"][layer] == int(routing.num_active.flatten()[real][tokens].sum())
    aux = [float(r.aux_loss) for _, r in seen]
    summary = probe.summary()
    if aux:
        assert abs(summary["aux_loss_mean"] - sum(aux) / len(aux)) < 1e-6
    json.dumps(counts), json.dumps(summary)  # plain JSON


def test_probe_memory_is_bounded_and_generation_counts_text():
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny")
    model = UniMoEForCausalLM(config).eval()
    probe = RoutingProbe.for_model(config)
    ids = torch.randint(0, config.vocab_size, (1, 6))
    modality = torch.tensor([[0, 1, 1, 1, 0, 0]])
    out = generate(model, ids, max_new_tokens=5, probe=probe, modality_ids=modality)
    counts = probe.counts()
    assert counts["image"]["tokens"] == 3
    assert counts["text"]["tokens"] == 3 + len(out.tokens[0]) - 1  # the last new token is never fed back
    assert probe.token_records == []  # nothing per token unless keep_tokens=True
    before = probe.expert_tokens.shape
    generate(model, ids, max_new_tokens=5, probe=probe, modality_ids=modality)
    assert probe.expert_tokens.shape == before
    assert probe.counts()["image"]["tokens"] == 6


def test_keep_tokens_records_every_choice():
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny")
    model = UniMoEForCausalLM(config).eval()
    probe = RoutingProbe.for_model(config, keep_tokens=True)
    with torch.no_grad():
        model(torch.randint(0, config.vocab_size, (1, 5)), probe=probe)
    assert len(probe.token_records) == config.num_hidden_layers
    per_layer = torch.stack([torch.bincount(r["expert_ids"][r["expert_ids"] >= 0], minlength=probe.num_experts)
                             for r in probe.token_records])
    assert per_layer.tolist() == probe.counts()["text"]["expert_tokens"]
