"""Omni 3D position ids (worked examples of the architecture report §2.4) and M-RoPE tables."""

import pytest
import torch

from unimoe.rope import MediaTokens, RotaryEmbedding, apply_rotary, build_position_ids

IMAGE, VIDEO, AUDIO = 900, 901, 902
MEDIA = MediaTokens(image_token_id=IMAGE, video_token_id=VIDEO, audio_token_id=AUDIO, spatial_pool=2,
                    audio_tokens_per_chunk=200)


def triples(position_ids: torch.Tensor, row: int = 0) -> list[tuple[int, int, int]]:
    return [tuple(p) for p in position_ids[:, row].T.tolist()]


def test_image_crops_are_listed_crop_by_crop():
    # text id 0, then a 1 x 2 grid of 2 x 2 crops, then text: the worked example of §2.4
    ids = torch.tensor([[1] + [IMAGE] * 8 + [2]])
    got = triples(build_position_ids(ids, MEDIA, image_grid_thw=torch.tensor([[1, 1, 2]])))
    assert got == [
        (0, 0, 0),
        (1, 1, 1), (1, 1, 2), (1, 2, 1), (1, 2, 2),
        (1, 1, 3), (1, 1, 4), (1, 2, 3), (1, 2, 4),
        (5, 5, 5),
    ]


def test_video_time_steps_by_two_ids_per_second():
    # 3 frames sampled at 0.5 fps (2 s apart): t = T0, T0 + 4, T0 + 8; one 2 x 2 crop per frame
    ids = torch.tensor([[1, 1] + [VIDEO] * 12 + [2]])
    pos = build_position_ids(ids, MEDIA, video_grid_thw=torch.tensor([[3, 1, 1]]),
                             video_seconds_per_frame=torch.tensor([2.0]))
    got = triples(pos)
    assert [p[0] for p in got[2:14]] == [2] * 4 + [6] * 4 + [10] * 4
    assert [p[1:] for p in got[2:6]] == [(2, 2), (2, 3), (3, 2), (3, 3)]
    assert got[14] == (11, 11, 11)


def test_video_time_is_rounded():
    ids = torch.tensor([[VIDEO] * 12])
    pos = build_position_ids(ids, MEDIA, video_grid_thw=torch.tensor([[3, 1, 1]]),
                             video_seconds_per_frame=torch.tensor([0.3]))
    assert pos[0, 0, ::4].tolist() == [0, 1, 1]  # round(0.6) = 1, round(1.2) = 1


def test_audio_groups_share_ids_and_step_by_six_with_a_visual_input():
    ids = torch.tensor([[1] + [IMAGE] * 4 + [3] + [AUDIO] * 200 + [2]])
    pos = build_position_ids(ids, MEDIA, image_grid_thw=torch.tensor([[1, 1, 1]]), audio_chunks=torch.tensor([1]))
    t0 = 4  # text 0, image 1..2 (h, w up to 2), text 3, audio starts at 4
    audio = pos[:, 0, 6:206]
    assert torch.equal(audio[0], audio[1]) and torch.equal(audio[0], audio[2])
    assert audio[0].unique_consecutive().tolist() == [t0 + 6 * g for g in range(10)]
    assert (audio[0] == t0).sum() == 20
    assert pos[:, 0, 206].tolist() == [t0 + 55] * 3


def test_two_audio_chunks_continue_the_group_index():
    ids = torch.tensor([[IMAGE] * 4 + [AUDIO] * 400])
    pos = build_position_ids(ids, MEDIA, image_grid_thw=torch.tensor([[1, 1, 1]]), audio_chunks=torch.tensor([2]))
    assert pos[0, 0, 4:].unique_consecutive().tolist() == [2 + 6 * g for g in range(20)]


def test_audio_only_prompt_gets_sequential_ids():
    # the released quirk: without an image or video in the batch, audio is not laid out in 3-D
    ids = torch.tensor([[1, 2] + [AUDIO] * 200 + [3]])
    pos = build_position_ids(ids, MEDIA, audio_chunks=torch.tensor([1]))
    assert pos.shape == (3, 1, 203)
    assert pos[0, 0].tolist() == list(range(203))


def test_left_padding_gives_the_unpadded_ids():
    ids = torch.tensor([[1] + [IMAGE] * 8 + [2]])
    grid = torch.tensor([[1, 1, 2]])
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], dim=1)
    mask = torch.tensor([[0, 0, 0] + [1] * 10])
    got = build_position_ids(padded, MEDIA, image_grid_thw=grid, attention_mask=mask)
    assert torch.equal(got[:, :, 3:], build_position_ids(ids, MEDIA, image_grid_thw=grid))
    assert (got[:, :, :3] == 1).all()


def test_grids_and_placeholders_must_agree():
    ids = torch.tensor([[1] + [IMAGE] * 7 + [2]])
    with pytest.raises(ValueError, match="placeholder"):
        build_position_ids(ids, MEDIA, image_grid_thw=torch.tensor([[1, 1, 2]]))
    with pytest.raises(ValueError, match="more image grids"):
        build_position_ids(torch.tensor([[1, 2]]), MEDIA, image_grid_thw=torch.tensor([[1, 1, 1]]))


def test_mrope_tables_match_transformers_qwen2_vl():
    from transformers import Qwen2VLTextConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLRotaryEmbedding

    torch.manual_seed(0)
    config = Qwen2VLTextConfig(hidden_size=64, num_attention_heads=2, num_key_value_heads=1,
                               rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]})
    theirs = Qwen2VLRotaryEmbedding(config)
    ours = RotaryEmbedding(32, 1e6, [4, 6, 6])
    position_ids = torch.randint(0, 500, (3, 2, 7))
    cos_ref, sin_ref = theirs(torch.zeros(1, dtype=torch.float32), position_ids)
    cos, sin = ours(position_ids, torch.float32)
    cos, sin = cos[:, 0], sin[:, 0]  # ours carry a broadcast head axis
    torch.testing.assert_close(cos, cos_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(sin, sin_ref, rtol=0, atol=1e-6)


def test_text_positions_reduce_mrope_to_1d_rope():
    torch.manual_seed(0)
    mrope, plain = RotaryEmbedding(16, 1e4, [2, 3, 3]), RotaryEmbedding(16, 1e4)
    pos = torch.arange(9).view(1, 9)
    x = torch.randn(1, 2, 9, 16)
    a = apply_rotary(x, *mrope(pos.expand(3, 1, 9), torch.float32))
    b = apply_rotary(x, *plain(pos, torch.float32))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_grids_are_consumed_in_batch_order():
    row0 = [1] + [IMAGE] * 4 + [2]  # one 1 x 1 crop grid
    row1 = [1] + [IMAGE] * 8 + [2]  # one 1 x 2 crop grid
    ids = torch.tensor([[0] * 4 + row0, row1])
    mask = torch.tensor([[0] * 4 + [1] * 6, [1] * 10])
    grids = torch.tensor([[1, 1, 1], [1, 1, 2]])
    pos = build_position_ids(ids, MEDIA, image_grid_thw=grids, attention_mask=mask)
    alone0 = build_position_ids(torch.tensor([row0]), MEDIA, image_grid_thw=grids[:1])
    alone1 = build_position_ids(torch.tensor([row1]), MEDIA, image_grid_thw=grids[1:])
    assert torch.equal(pos[:, 0, 4:], alone0[:, 0]) and torch.equal(pos[:, 1], alone1[:, 0])


def test_an_audio_only_prompt_keeps_its_1d_ids_when_batched_with_an_image():
    """The fallback is decided per prompt: a sample's ids (and so its answer) never depend on its batch-mates."""
    audio_row = [1] + [AUDIO] * 200 + [2, 3]
    image_row = [1] + [IMAGE] * 8 + [2] + [0] * 193
    batch = torch.tensor([image_row, audio_row])
    mask = torch.tensor([[1] * 10 + [0] * 193, [1] * 203])
    got = build_position_ids(batch, MEDIA, image_grid_thw=torch.tensor([[1, 1, 2]]),
                             audio_chunks=torch.tensor([1]), attention_mask=mask)
    alone = build_position_ids(torch.tensor([audio_row]), MEDIA, audio_chunks=torch.tensor([1]))
    assert torch.equal(got[:, 1:], alone) and torch.equal(alone[0, 0], torch.arange(203))
    assert torch.equal(got[:, :1, :10], build_position_ids(torch.tensor([image_row[:10]]), MEDIA,
                                                           image_grid_thw=torch.tensor([[1, 1, 2]])))
