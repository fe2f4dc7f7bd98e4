import pytest

from tests.models.builders import (
    build_tiny_llava,
    build_tiny_qwen2,
    build_tiny_qwen2_audio,
    build_tiny_whisper,
)


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture(scope="session")
def tiny_qwen2_audio(tmp_path_factory):
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny_qwen2_audio"))


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory):
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2"))


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct through model=hf, loaded once for every test that needs it (~20 s)."""
    from harness.models import build_model
    from tests.models.builders import smollm2_config

    return build_model(smollm2_config())
