"""Every task config names the reference it follows, the protocol notes it cites ship with the project, and
no file points a user at a folder outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TASK_CONFIGS = sorted(p for p in (ROOT / "configs" / "task").glob("*.yaml")
                      if yaml.safe_load(p.read_text()).get("kind") != "group")


def header(path: Path) -> str:
    """The leading comment block, joined into one text."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


@pytest.mark.parametrize("path", TASK_CONFIGS, ids=[p.stem for p in TASK_CONFIGS])
def test_task_header_names_reference_and_deviation(path: Path) -> None:
    text = header(path)
    match = re.search(r"Reference: (.+?)\. Deviation: (.+?)\.$", text)
    assert match, f"{path.name}: header lacks 'Reference: ... Deviation: ...'"
    reference = match[1]
    assert any(key in reference for key in ("lmms-eval", "lm-eval", "no public script", ".py", "this project",
                                            "paper")), f"{path.name}: reference names no source: {reference}"
    if "lmms-eval 0.5.0" in reference:
        assert "tag v0.5 @ 8f142bc" in reference and "lmms_eval/tasks/" in reference, path.name


def test_protocol_index_lists_every_task() -> None:
    index = (ROOT / "docs" / "protocols" / "README.md").read_text()
    missing = [p.stem for p in TASK_CONFIGS if f"| {p.stem} |" not in index]
    assert not missing, f"docs/protocols/README.md lacks {missing}"


def test_cited_protocol_notes_exist() -> None:
    cited = set()
    for path in [*TASK_CONFIGS, *(ROOT / "tasks").rglob("*.py"), *(ROOT / "harness").rglob("*.py")]:
        cited |= set(re.findall(r"docs/protocols/[\w.-]+\.md", path.read_text()))
    assert cited, "no config cites the protocol notes"
    assert all((ROOT / c).is_file() for c in cited), sorted(c for c in cited if not (ROOT / c).is_file())


def test_nothing_cites_the_helpers_shared_folder() -> None:
    """Users' clones have no ``shared/`` folder: code, configs and docs must not send them there."""
    roots = [ROOT / "harness", ROOT / "unimoe", ROOT / "tasks", ROOT / "configs", ROOT / "docs", ROOT / "README.md"]
    files = [f for r in roots for f in ([r] if r.is_file() else r.rglob("*"))
             if f.is_file() and f.suffix in (".py", ".yaml", ".md")]
    offenders = [f"{f.relative_to(ROOT)}:{n}" for f in files
                 for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1)
                 if re.search(r"(?<![\w/])shared/reference|benchmarks\.(csv|md)\b", line)]
    assert not offenders, offenders


@pytest.mark.parametrize("path", TASK_CONFIGS, ids=[p.stem for p in TASK_CONFIGS])
def test_response_policies_apply_to_text_output(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    if config.get("response_strip") or config.get("unanswered") == "excluded":
        assert config.get("output", "text") == "text", path.name
