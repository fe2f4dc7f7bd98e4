"""The unimoe adapter's image path: image-output requests come back as PNG files from the image head."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.api import ImagePart, Message, Request, TextPart, stable_hash
from harness.models.unimoe import UniMoEAdapter
from unimoe.imagegen.generator import ImageGenerator
from unimoe.train.imagegen import tiny_config


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("head")
    ImageGenerator(tiny_config()).save(folder)
    return folder


def _request(*parts) -> Request:
    return Request(task="t", doc_id="0", messages=(Message.user(*parts),), output="image")


def test_image_requests_return_pngs_with_and_without_a_source(head_dir, tmp_path):
    source = tmp_path / "source.png"
    Image.fromarray(np.full((40, 50, 3), 200, dtype=np.uint8)).save(source)
    adapter = UniMoEAdapter("unimoe_tiny", preset="tiny_omni", init="random", imagegen=str(head_dir))
    drawn, edited = adapter.generate([_request(TextPart("Draw a red square.")),
                                      _request(ImagePart(str(source)), TextPart("Make it blue."))])
    for response in (drawn, edited):
        assert response.error is None and response.stats["spans"] == "forced"
        assert Image.open(response.image).size == (64, 64)
    again = adapter.generate([_request(TextPart("Draw a red square."))])[0]
    assert Image.open(again.image).tobytes() == Image.open(drawn.image).tobytes()  # seeded: same request, same image


def test_the_image_head_is_part_of_the_identity_only_when_set(head_dir):
    plain = UniMoEAdapter("unimoe_tiny", preset="tiny_omni", init="random")
    assert plain.fingerprint() == stable_hash({"unimoe": "tiny_omni", "init": "random", "seed": 0, "dtype": "float32"})
    trained = UniMoEAdapter("unimoe_tiny", preset="tiny_omni", init="random", imagegen=str(head_dir))
    untrained = UniMoEAdapter("unimoe_tiny", preset="tiny_omni", init="random", imagegen=str(head_dir),
                              imagegen_init="random")
    assert len({plain.fingerprint(), trained.fingerprint(), untrained.fingerprint()}) == 3


def test_missing_or_unset_image_head_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        UniMoEAdapter("unimoe_tiny", preset="tiny_omni", init="random", imagegen=str(tmp_path / "absent"))
    adapter = UniMoEAdapter("unimoe_tiny", preset="tiny_omni", init="random")
    with pytest.raises(ValueError, match="model.args.imagegen"):
        adapter.generate([_request(TextPart("Draw a red square."))])
