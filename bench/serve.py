"""Serving both ways, measured in one run.

1. ``harness serve model=unimoe_tiny`` under load: 64 concurrent clients for a bounded time against a server
   with dynamic batching (max_batch=32), then one client sending one request at a time against the same
   model served without batching (max_batch=1). Prints errors, p50/p99 latency, requests/s, and the ratio.
2. ``model=openai`` against a local endpoint that answers every request after 200 ms: a whole evaluation run
   (runner, cache, sample logs, scoring) at max_concurrency=32 against the same at max_concurrency=1, and the
   harness's own time per request: the run's wall time minus the time spent inside the ``openai`` client's
   calls, per request (at concurrency 1, where calls do not overlap, against an endpoint that answers at once;
   the slope between a 50- and a 250-request run, so that a run's fixed costs cancel).

    python bench/serve.py [--seconds 20] [--clients 64] [--skip-load] [--skip-client]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from fastapi import FastAPI, Request  # module level: FastAPI reads the handler's annotations by name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = ["What colour is the {}?", "How many {} are there?", "Which shape is the {}?", "Is the {} moving?"]
THINGS = ["square", "circle", "triangle", "star", "ball", "box", "dog", "bird"]


# ------------------------------------------------------------------------------------- 1. serve under load


async def _load(url: str, clients: int, seconds: float) -> dict[str, float]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one_client(index: int) -> None:
        nonlocal errors
        i = index
        while time.perf_counter() < stop_at:
            prompt = PROMPTS[i % len(PROMPTS)].format(THINGS[i % len(THINGS)])
            i += clients
            started = time.perf_counter()
            try:
                await client.chat.completions.create(model="unimoe_tiny", max_tokens=8, temperature=0,
                                                     messages=[{"role": "user", "content": prompt}])
                latencies.append(time.perf_counter() - started)
            except openai.OpenAIError:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(clients)))
    wall = time.perf_counter() - started
    await client.close()
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / wall, "p50_ms": pct(0.5),
            "p99_ms": pct(0.99)}


def bench_load(seconds: float, clients: int) -> None:
    from tests.serve.server import served

    print(f"harness serve model=unimoe_tiny, {seconds:.0f} s per setting, max_tokens=8, greedy, text prompts")
    with served("model=unimoe_tiny", "max_batch=32", "max_wait_ms=10", f"max_queue={4 * clients}") as server:
        asyncio.run(_load(server.url, 2, 3))  # warm-up: the model loads on the first request
        batched = asyncio.run(_load(server.url, clients, seconds))
    with served("model=unimoe_tiny", "max_batch=1") as server:
        asyncio.run(_load(server.url, 1, 3))
        single = asyncio.run(_load(server.url, 1, seconds))
    for name, r in ((f"{clients} clients, dynamic batching", batched), ("1 client, one at a time", single)):
        print(f"  {name:34} {r['requests']:6d} req  {r['errors']:3d} errors  p50 {r['p50_ms']:7.1f} ms  "
              f"p99 {r['p99_ms']:7.1f} ms  {r['rps']:7.2f} req/s")
    print(f"  throughput ratio (batched / one at a time): {batched['rps'] / single['rps']:.2f}x (goal >= 3x)")


# ------------------------------------------------------------------------------- 2. model=openai as a client


def _slow_endpoint(delay_s: float) -> tuple[str, object]:
    """A chat endpoint on loopback answering every request after ``delay_s`` (uvicorn in a thread)."""
    import uvicorn

    from tests.serve.server import free_port

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        body = json.loads(await request.body())
        await asyncio.sleep(delay_s)
        text = body["messages"][-1]["content"]
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": str(len(text))},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9}}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}/v1", server


def _run(url: str, concurrency: int, docs: int, folder: Path) -> tuple[float, float]:
    """Wall seconds of one evaluation run of ``docs`` requests, and the seconds spent inside the client's calls."""
    from harness.evaluate import evaluate
    from harness.models import build_model

    data = folder / "docs"
    data.mkdir(parents=True)
    with open(data / "docs.jsonl", "w") as f:
        for i in range(docs):
            f.write(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": str(2 * i)}) + "\n")
    task = {"name": "bench_echo", "group": "text", "doc_id": "id", "prompt": {"template": "{question}"},
            "extract": "strip", "metrics": ["exact_match"], "primary_metric": "exact_match"}
    model = build_model({"name": "openai", "adapter": "openai",
                         "args": {"base_url": url, "model": "echo", "max_concurrency": concurrency}})
    inside = [0.0]
    original = model.generate

    def timed_generate(requests):  # wrap the client's call once it exists
        client = model._client
        if client is None:
            from harness.openai_client import ChatClient

            model._client = client = ChatClient(model.settings)
            for chat in client._clients:
                create = chat.chat.completions.create

                async def timed(*a, _create=create, **kw):
                    started = time.perf_counter()
                    try:
                        return await _create(*a, **kw)
                    finally:
                        inside[0] += time.perf_counter() - started

                chat.chat.completions.create = timed
        return original(requests)

    model.generate = timed_generate
    started = time.perf_counter()
    evaluate(task, model, data="full", data_dir=str(data), cache=True, output_dir=folder / "out",
             rebuild_leaderboards=False)
    return time.perf_counter() - started, inside[0]


def bench_client() -> None:
    url, server = _slow_endpoint(0.2)
    instant_url, instant = _slow_endpoint(0.0)
    print("model=openai against a local endpoint answering after 200 ms (a whole run: runner, cache, logs, scoring)")
    with tempfile.TemporaryDirectory() as tmp:
        one_wall, _ = _run(url, 1, 20, Path(tmp) / "one")
        many_wall, _ = _run(url, 32, 640, Path(tmp) / "many")
        # the harness's own time per request: the slope of (wall - time inside the client's calls) between two
        # run sizes at concurrency 1, so that a run's fixed costs (run folder, environment record) cancel out
        # (median of three: the machine's other load moves single figures)
        slopes, client_ms = [], []
        for repeat in range(3):
            small, large = (_run(instant_url, 1, n, Path(tmp) / f"slope-{repeat}-{n}") for n in (50, 250))
            slopes.append(((large[0] - large[1]) - (small[0] - small[1])) / 200 * 1000)
            client_ms.append(large[1] / 250 * 1000)
    server.should_exit = instant.should_exit = True  # type: ignore[attr-defined]
    one_rps, many_rps = 20 / one_wall, 640 / many_wall
    overhead_ms = statistics.median(slopes)
    print(f"  max_concurrency=1   {20:4d} requests  {one_wall:6.2f} s  {one_rps:7.2f} req/s")
    print(f"  max_concurrency=32  {640:4d} requests  {many_wall:6.2f} s  {many_rps:7.2f} req/s")
    print(f"  throughput ratio: {many_rps / one_rps:.1f}x (goal >= 20x)")
    print(f"  harness overhead per request (outside the openai client's calls): {overhead_ms:.2f} ms (goal < 2 ms); "
          f"the openai client itself: {statistics.median(client_ms):.2f} ms per call against an instant local endpoint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-client", action="store_true")
    args = parser.parse_args()
    if not args.skip_client:
        bench_client()
    if not args.skip_load:
        bench_load(args.seconds, args.clients)


if __name__ == "__main__":
    main()
