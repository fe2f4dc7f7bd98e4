"""Dense-to-MoE initialisation: slices partition the dense FFN; exact copies reproduce the dense model."""

from __future__ import annotations

import torch

from unimoe.config import UniMoEConfig
from unimoe.model import UniMoEForCausalLM
from unimoe.train.upcycle import dense_config, upcycle


def test_experts_partition_the_dense_ffn_and_shared_start_identical():
    moe_cfg = UniMoEConfig.preset("tiny").replace(intermediate_size=128, dynamic_intermediate_size=32,
                                                  shared_intermediate_size=16)
    torch.manual_seed(0)
    dense = UniMoEForCausalLM(dense_config(moe_cfg))
    moe = upcycle(dense, UniMoEForCausalLM(moe_cfg))
    src = dense.model.layers[1].mlp.routed_experts.gate_proj[0]
    dst = moe.model.layers[1].mlp
    torch.testing.assert_close(torch.cat(list(dst.routed_experts.gate_proj)), src)  # 4 x 32 = the 128 rows
    torch.testing.assert_close(dst.shared_experts.up_proj[0], dst.shared_experts.up_proj[1])
    torch.testing.assert_close(dst.shared_experts.gate_proj[0], src[:16])
    torch.testing.assert_close(moe.model.layers[0].self_attn.q_proj.weight, dense.model.layers[0].self_attn.q_proj.weight)


def test_full_width_copies_reproduce_the_dense_model():
    moe_cfg = UniMoEConfig.preset("tiny").replace(
        dynamic_intermediate_size=128, intermediate_size=128, mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0,
        mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=2)
    torch.manual_seed(0)
    dense = UniMoEForCausalLM(dense_config(moe_cfg)).eval()
    moe = upcycle(dense, UniMoEForCausalLM(moe_cfg)).eval()
    ids = torch.randint(0, moe_cfg.vocab_size, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(moe(ids).logits, dense(ids).logits, rtol=1e-5, atol=1e-5)
