"""model=openai and the shared HTTP client against fake OpenAI-compatible endpoints on loopback: media parts,
retries, concurrency, replicas, rate limits, the endpoint-down stop, usage and cost, and the API key's secrecy."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from harness.api import AudioPart, GenerationConfig, ImagePart, Message, ModelUnavailable, Request, VideoPart
from harness.evaluate import evaluate
from harness.models import build_model
from harness.models.openai_messages import chat_body
from harness.openai_client import RateLimiter
from tests.harness_toys import toy_task_config, write_toy_docs
from tests.judges.fake_endpoint import FakeServer
from tests.serve.server import free_port


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def adapter(*urls: str, **args):
    return build_model({"name": "openai", "adapter": "openai",
                        "args": {"base_urls": list(urls), "model": "fake-gpt", "backoff_s": 0.01, **args}})


def request(doc_id: str = "q0", *parts, **gen) -> Request:
    return Request(task="toy", doc_id=doc_id, messages=(Message.user(*(parts or ("2 + 2?",))),),
                   generation=GenerationConfig(**gen))


def media(tmp_path):
    import soundfile as sf

    from tasks.fixtures.writers import write_video

    Image.fromarray(np.full((8, 12, 3), 200, np.uint8)).save(tmp_path / "im.png")
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    frames = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    write_video(tmp_path / "v.mp4", frames, fps=4)
    return tmp_path / "im.png", tmp_path / "a.wav", tmp_path / "v.mp4"


def test_media_parts_and_sampling(tmp_path):
    image, audio, video = media(tmp_path)
    req = request("q0", ImagePart(str(image)), AudioPart(str(audio)), VideoPart(str(video), fps=2, max_frames=3),
                  "what?", max_new_tokens=5, until=("\n",))
    body = chat_body(req, "m")
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "input_audio", "image_url", "image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    assert parts[1]["input_audio"] == {"data": base64.b64encode(audio.read_bytes()).decode(), "format": "wav"}
    assert parts[2]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert body["max_tokens"] == 5 and body["temperature"] == 0.0 and body["stop"] == ["\n"] and "top_p" not in body
    as_video = chat_body(req, "m", video="video_url")["messages"][0]["content"][2]
    assert as_video["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert (as_video["video_url"]["fps"], as_video["video_url"]["max_frames"]) == (2, 3)
    resized = chat_body(request("q0", ImagePart(str(image))), "m", image_area=24)["messages"][0]["content"][0]
    png = base64.b64decode(resized["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (6, 4)
    sampled = chat_body(request(do_sample=True, temperature=0.7, top_p=0.9, seed=3), "m")
    assert (sampled["temperature"], sampled["top_p"], sampled["seed"]) == (0.7, 0.9, 3)


def test_retries_on_5xx_and_429_but_not_on_400(server):
    server.fail_next = [503, 429]
    (ok,) = adapter(server.url).generate([request()])
    assert ok.text == "B" and server.calls == 3
    server.fail_next = [400]
    (bad,) = adapter(server.url).generate([request("q7")])
    assert bad.error and "q7" in bad.error and "HTTP 400" in bad.error and server.calls == 4


def test_requests_run_concurrently_across_replicas():
    with FakeServer() as a, FakeServer() as b:
        a.delay_s = b.delay_s = 0.3
        model = adapter(a.url, b.url, max_concurrency=8)
        started = time.perf_counter()
        responses = model.generate([request(f"q{i}") for i in range(16)])
        elapsed = time.perf_counter() - started
    assert [r.text for r in responses] == ["B"] * 16
    assert a.calls == b.calls == 8  # the least busy replica is asked
    assert elapsed < 16 * 0.3 / 3  # 8 in flight: two rounds of 0.3 s, not sixteen


def test_rate_limiter_spreads_requests_over_the_minute():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.delay(1) for _ in range(60)] == [0.0] * 60  # a minute's worth at once
    assert limiter.delay(1) == pytest.approx(1.0)  # then one a second
    now[0] = 10.0
    assert limiter.delay(1) == 0.0


def test_endpoint_down_stops_the_run_with_one_message(tmp_path):
    data = write_toy_docs(tmp_path / "data", n=40)
    model = {"name": "openai", "adapter": "openai", "args": {
        "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "retries": 1, "backoff_s": 0.01,
        "max_consecutive_failures": 3, "max_concurrency": 2}}
    with pytest.raises(ModelUnavailable, match="endpoint down: 3 consecutive connection failures") as stop:
        evaluate(toy_task_config(), model, data="full", data_dir=str(data), output_dir=tmp_path / "r",
                 rebuild_leaderboards=False)
    assert "\n" not in str(stop.value)
    (log,) = (tmp_path / "r").glob("runs/*/samples/toy.jsonl")
    assert log.read_text() == ""  # no sample was marked failed


def test_usage_cost_and_the_key_never_written(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-very-secret")
    data = write_toy_docs(tmp_path / "data", n=5)
    model = {"name": "openai", "adapter": "openai", "args": {
        "base_url": server.url, "model": "fake-gpt", "api_key_env": "FAKE_OPENAI_KEY",
        "prices": {"prompt": 1.0, "completion": 4.0}}}
    summary = evaluate(toy_task_config(), model, data="full", data_dir=str(data), output_dir=tmp_path / "r",
                       rebuild_leaderboards=False)
    usage = summary.results["tasks"]["toy"]["usage"]
    assert usage == {"prompt_tokens": 50, "completion_tokens": 10, "cost_usd": pytest.approx(90e-6), "requests": 5}
    assert set(server.auth) == {"Bearer sk-very-secret"}
    for path in (tmp_path / "r").rglob("*"):
        if path.is_file():
            assert b"sk-very-secret" not in path.read_bytes(), path
    again = evaluate(toy_task_config(), model, data="full", data_dir=str(data), output_dir=tmp_path / "r",
                     rebuild_leaderboards=False)
    assert server.calls == 5 and "usage" not in again.results["tasks"]["toy"]  # all cached: nothing spent


def test_missing_key_variable_is_one_clear_error(server, monkeypatch):
    monkeypatch.delenv("FAKE_OPENAI_KEY", raising=False)
    with pytest.raises(ModelUnavailable, match="FAKE_OPENAI_KEY"):
        adapter(server.url, api_key_env="FAKE_OPENAI_KEY").generate([request()])
    with pytest.raises(ModelUnavailable):
        adapter(f"http://127.0.0.1:{free_port()}/v1", retries=0, max_consecutive_failures=1).generate([request()])
