"""Secrets planted in a judged run (URL credentials, an API key, secret-named model fields) appear in no file it
writes, while the judge still receives its credentials."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from harness.secrets import is_secret_key, redact, redact_url
from tests.cli_probe import harness
from tests.judges.fake_endpoint import FakeServer

URL_SECRET, ENV_SECRET = "url-pass-4f1c9e", "env-key-8d2b7a"
FIELD_SECRETS = {"passwd": "pw-3e5d1f", "credentials": "cred-9a7c2b", "access_key_id": "akid-6b4e0d",
                 "secret_access_key": "sak-1d8f3a", "private_key": "pk-5c2e9b"}


def _every_file_free_of(root: Path, secrets: list[str]) -> list[str]:
    """``path: secret`` for each file under ``root`` (SQLite caches, logs, configs included) holding a secret."""
    return [f"{p}: {s}" for p in root.rglob("*") if p.is_file() for s in secrets if s.encode() in p.read_bytes()]


@pytest.mark.parametrize("key_from_env", [True, False], ids=["bearer-key", "url-userinfo"])
def test_a_judged_run_writes_no_planted_secret(tmp_path: Path, key_from_env: bool):
    with FakeServer() as server:
        url = server.url.replace("http://", f"http://judge-user:{URL_SECRET}@")
        fields = [f"+model.{key}={value}" for key, value in FIELD_SECRETS.items()]
        proc = harness("run", "task=mathverse_testmini_vision", "model=random", "judge=gpt4o_mathverse",
                       f"judge.base_url={url}", "judge.policy.backoff_s=0", *fields,
                       *([] if key_from_env else ["judge.api_key_env=null"]),
                       f"output_dir={tmp_path}", "progress=false", env={"OPENAI_API_KEY": ENV_SECRET})
    assert proc.returncode == 0, proc.stderr
    expected = (f"Bearer {ENV_SECRET}" if key_from_env
                else "Basic " + base64.b64encode(f"judge-user:{URL_SECRET}".encode()).decode())
    assert server.calls > 0 and set(server.auth) == {expected}  # the judge was reached, with its credentials
    secrets = [URL_SECRET, ENV_SECRET, *FIELD_SECRETS.values()]
    assert _every_file_free_of(tmp_path, secrets) == []
    assert not any(s in proc.stdout + proc.stderr for s in secrets)
    results = next(tmp_path.glob("runs/*/results.json")).read_text()
    assert '"host": "127.0.0.1:' in results and "<redacted>" in results


def test_secret_names_are_matched_word_by_word():
    secret = ["api_key", "apiKey", "X-Api-Key", "HF_TOKEN", "credentials", "passwd", "access_key_id",
              "secret_access_key", "auth", "Authorization", "private_key", "client_secret"]
    kept = ["max_tokens", "author", "tokenizer", "api_key_env", "checkpoint", "base_url", "keyframes"]
    assert [k for k in secret if not is_secret_key(k)] == []
    assert [k for k in kept if is_secret_key(k)] == []


def test_urls_lose_userinfo_and_secret_query_values():
    assert redact_url("https://u:p@host:8443/v1?api_key=abc&model=x") == \
        "https://<redacted>@host:8443/v1?api_key=<redacted>&model=x"
    assert redact_url("https://host/v1") == "https://host/v1"
    nested = redact({"judge": {"base_url": "http://a:b@h/v1", "api_key_env": "OPENAI_API_KEY", "token": ""},
                     "notes": ["see http://x:y@h2/p"]})
    assert nested == {"judge": {"base_url": "http://<redacted>@h/v1", "api_key_env": "OPENAI_API_KEY", "token": ""},
                      "notes": ["see http://<redacted>@h2/p"]}


def test_a_sweep_record_keeps_no_planted_secret(tmp_path: Path):
    """Hydra writes a sweep's overrides and config to sweeps/<time>/multirun.yaml; they are redacted there too."""
    fields = [f"+model.{key}={value}" for key, value in FIELD_SECRETS.items()]
    proc = harness("run", "-m", "task=gpqa_diamond", "model=random", "seed=0,1", *fields, f"output_dir={tmp_path}",
                   "progress=false")
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("sweeps/*/multirun.yaml"))) == 1 and len(list(tmp_path.glob("runs/*"))) == 2
    assert _every_file_free_of(tmp_path, list(FIELD_SECRETS.values())) == []


def test_an_error_quoting_a_url_with_credentials_is_recorded_without_them(tmp_path: Path):
    from harness.api import Response
    from harness.evaluate import evaluate
    from tests.harness_toys import toy_task_config, write_toy_docs

    class Unreachable:
        name = "remote"

        def fingerprint(self) -> str:
            return "remote"

        def generate(self, requests):
            return [Response(error=f"cannot reach http://svc:{URL_SECRET}@10.0.0.1/v1") for _ in requests]

    data = write_toy_docs(tmp_path / "data", n=2)
    evaluate(toy_task_config(), Unreachable(), data="full", data_dir=str(data), output_dir=tmp_path / "out")
    assert _every_file_free_of(tmp_path / "out", [URL_SECRET]) == []
    results = next((tmp_path / "out").glob("runs/*/results.json")).read_text()
    assert "http://<redacted>@10.0.0.1/v1" in results
