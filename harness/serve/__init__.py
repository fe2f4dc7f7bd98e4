"""``python -m harness serve model=<adapter>``: any in-process adapter behind an OpenAI-compatible HTTP API, so
that other harnesses (lmms-eval, lm-eval, VLMEvalKit) and our own ``model=openai`` can evaluate it.

``app`` builds the FastAPI application, ``batcher`` turns concurrent requests into the adapter's batches,
``protocol`` reads OpenAI request bodies into harness requests.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import yaml

USAGE = ("usage: python -m harness serve model=<model> [host=127.0.0.1] [port=8000] [max_batch=16] "
         "[max_wait_ms=10] [max_queue=256] [max_media_mb=50] [api_key_env=VAR] [model.args.<key>=<value> ...]")


def serve_command(args: dict[str, str]) -> int:
    """Build the adapter the arguments name and serve it until interrupted."""
    import uvicorn

    from harness.evaluate import _model_config
    from harness.models import build_model
    from harness.serve.app import create_app
    from harness.serve.protocol import Limits

    if "model" not in args:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        config = _model_config(args["model"])
    except KeyError as e:
        print(f"serve: {e.args[0]}", file=sys.stderr)
        return 2
    overrides = {k[len("model.args."):]: yaml.safe_load(v) for k, v in args.items() if k.startswith("model.args.")}
    config["args"] = {**(config.get("args") or {}), **overrides}
    token = None
    if args.get("api_key_env"):
        token = os.environ.get(args["api_key_env"])
        if not token:
            print(f"serve: api_key_env={args['api_key_env']} names an unset environment variable", file=sys.stderr)
            return 2
    host, port = args.get("host", "127.0.0.1"), int(args.get("port", 8000))
    if not token and not _loopback(host):
        print(f"serve: warning: {host} is reachable from other machines and no api_key_env is set", file=sys.stderr)
    adapter = build_model(config)
    app = create_app(adapter, max_batch=int(args.get("max_batch", 16)), max_wait_ms=float(args.get("max_wait_ms", 10)),
                     max_queue=int(args.get("max_queue", 256)), token=token,
                     limits=Limits(max_media_bytes=int(float(args.get("max_media_mb", 50)) * 2**20)))
    print(f"serving {adapter.name} at http://{host}:{port}/v1 (OpenAI chat completions)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

