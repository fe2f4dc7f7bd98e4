"""`harness serve` refuses bad requests with one clear 400 (401 without the token, 503 when the queue is full)
and keeps serving; a fast server over the seeded random baseline."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from tests.serve.server import served

TOKEN = {"SERVE_TEST_TOKEN": "tok-123"}
AUTH = {"Authorization": "Bearer tok-123"}


def image_body(data: bytes, mime: str = "image/png") -> dict:
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return {"model": "random", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": url}}]}]}


@pytest.fixture(scope="module")
def server():
    with served("model=random", "api_key_env=SERVE_TEST_TOKEN", "max_media_mb=0.001", "max_batch=1",
                "max_queue=1", "model.args.latency_ms=300", env=TOKEN) as s:
        yield s


@pytest.mark.parametrize("body, message", [
    (b"{not json", "malformed JSON"),
    ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, "unknown model 'gpt-9'"),
    ({"model": "random", "messages": []}, "messages must be a non-empty list"),
    ({"model": "random", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "random", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/png;base64,@@not-base64@@"}}]}]}, "messages[0].content[0].image_url: invalid base64"),
    ({"model": "random", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "file:///etc/passwd"}}]}]}, "only base64 data URLs"),
    (image_body(b"x" * 4096), "exceeds the limit"),
    ({"model": "random", "messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]},
     "unsupported part type 'audio'"),
])
def test_bad_requests_get_400_and_the_server_keeps_serving(server, body, message):
    status, answer = server.post(body, AUTH)
    assert status == 400 and message in answer["error"]["message"]
    status, answer = server.post({"model": "random", "messages": [{"role": "user", "content": "hi"}]}, AUTH)
    assert status == 200 and answer["choices"][0]["message"]["content"]


def test_bearer_token_and_models_listing(server):
    assert server.post({"model": "random", "messages": [{"role": "user", "content": "hi"}]})[0] == 401
    import urllib.request

    listing = urllib.request.Request(f"{server.url}/models", headers=AUTH)
    with urllib.request.urlopen(listing, timeout=10) as resp:
        assert [m["id"] for m in json.loads(resp.read())["data"]] == ["random"]


def test_full_queue_answers_503(server):
    statuses: list[int] = []
    body = {"model": "random", "messages": [{"role": "user", "content": "hi"}]}
    clients = [threading.Thread(target=lambda: statuses.append(server.post(body, AUTH)[0])) for _ in range(6)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=30)
    assert 503 in statuses and 200 in statuses and set(statuses) <= {200, 503}


def test_sampling_fields_become_the_generation_config():
    from harness.serve.protocol import BadRequest, parse_chat

    def gen(**fields):
        return parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}, "m").generation

    greedy = gen(temperature=0, max_tokens=7, stop="\n")
    assert (greedy.do_sample, greedy.max_new_tokens, greedy.until) == (False, 7, ("\n",))
    sampled = gen(temperature=0.8, top_p=0.9, seed=5, stop=["A", "B"], max_completion_tokens=3)
    assert (sampled.do_sample, sampled.temperature, sampled.top_p, sampled.seed, sampled.until,
            sampled.max_new_tokens) == (True, 0.8, 0.9, 5, ("A", "B"), 3)
    assert gen(temperature=1.0).seed is not None  # unseeded sampling draws its own seed
    for bad in ({"n": 2}, {"n": "x"}, {"temperature": 3}, {"stop": [""]}, {"seed": "s"}, {"max_tokens": True}):
        with pytest.raises(BadRequest):
            gen(**bad)
