"""Redaction of secrets from everything the harness writes (configs, model args, judge identities).

Two kinds of secret are recognised. By *key*: a value stored under a name that says it is a credential
(``api_key``, ``passwd``, ``access_key_id``, ``secret_access_key``, ``auth``, ``private_key``...), matched
word by word so that ``max_tokens`` or ``author`` are kept. By *value*: a URL carrying ``user:password@``
(userinfo) or a credential in its query string, wherever it appears. A key ending in ``_env`` names an
environment variable (``api_key_env: OPENAI_API_KEY``): the name is kept, since the secret is not in it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

# Single words that make a key secret, and word pairs that do ("access key", "private key"...).
SECRET_WORDS = frozenset({
    "apikey", "auth", "authorization", "bearer", "cookie", "credential", "credentials", "passphrase",
    "passwd", "password", "pwd", "secret", "secrets", "token", "signature",
})
SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("session", "key"),
                          ("account", "key"), ("signing", "key"), ("master", "key")})

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_ASSIGNMENT = re.compile(r"^([+~]*[\w.\-/@]+)=(.+)$", re.S)  # a command-line override: key=value


def _words(key: str) -> list[str]:
    """``secretAccessKey`` / ``secret_access_key`` / ``X-Api-Key`` -> ["secret", "access", "key"]."""
    return [w.lower() for w in _WORD.findall(key)]


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key names a secret value (``*_env`` keys name a variable and are not secret)."""
    text = str(key)
    if text.lower().endswith("_env"):
        return False
    words = _words(text)
    return any(w in SECRET_WORDS for w in words) or any(pair in SECRET_PAIRS for pair in zip(words, words[1:]))


def redact_url(url: str) -> str:
    """The URL with ``user:password@`` replaced and secret query parameters' values hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe="<>")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    """``text`` with every URL passed through :func:`redact_url`; an override ``model.passwd=x`` (as Hydra
    records a sweep's command line, also comma-joined) loses its value when the last part of its key is secret."""
    if "=" in text:
        pieces = text.split(",")
        for i, piece in enumerate(pieces):
            assignment = _ASSIGNMENT.match(piece)
            if assignment and is_secret_key(re.split(r"[./]", assignment[1])[-1]):
                pieces[i] = f"{assignment[1]}={REDACTED}"
        text = ",".join(pieces)
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m[0]), text)


def redact_yaml_file(path: Path) -> None:
    """Rewrite a YAML record (Hydra's ``multirun.yaml`` of a sweep) with its secrets redacted."""
    import yaml

    if not path.is_file():
        return
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    clean = redact(data)
    if clean != data:
        from harness.results import write_text

        write_text(path, yaml.safe_dump(clean, sort_keys=False))


def redact(obj: Any) -> Any:
    """A copy of ``obj`` with secret-named values replaced and URL credentials removed from every string."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj
