"""`harness report`: the page, its figures and its data for a real unimoe_tiny run (and a compared run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.api import ImagePart
from harness.report.media import MediaStore
from tests.report.conftest import harness


def _page_data(html_text: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html_text, re.S)
    assert match, "the page carries its data as one JSON script"
    return json.loads(match.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def report(tiny_run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    done = harness("report", f"run={tiny_run}", f"out={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(out / "report.html")
    return out


def test_figures_are_written_for_papers(report: Path):
    for name in ("expert-usage", "layer-profile", "modality-distance", "training"):
        for suffix in (".png", ".pdf"):
            path = report / "figures" / f"{name}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path
    assert (report / "figures" / "expert-usage.pdf").read_bytes().startswith(b"%PDF")


def test_page_is_self_contained_and_holds_every_sample(report: Path, tiny_run: Path):
    text = (report / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', text), "no network resource"
    for alt in ("expert-usage of", "layer-profile of", "modality-distance of", "training curves"):
        assert f'alt="{alt}' in text
    data = _page_data(text)
    results = json.loads((tiny_run / "results.json").read_text())
    assert data["tasks"] == list(results["tasks"])
    assert len(data["rows"]) == sum(r["n_docs"] for r in results["tasks"].values())
    by_id = {row["id"]: row for row in data["rows"]}
    sample = json.loads((tiny_run / "samples" / "omniworld_image.jsonl").read_text().splitlines()[0])
    row = by_id[sample["doc_id"]]
    assert row["x"] == sample["prediction"] and row["g"] == sample["target"]
    assert row["s"] == ("correct" if sample["items"]["exact_match"] == 1.0 else "wrong")
    assert "What" in row["p"] or row["p"], "the prompt is rebuilt from the task config"
    kinds = {data["media"][m]["kind"] for r in data["rows"] for m in r["m"]}
    assert {"image", "video", "audio"} <= kinds
    assert all(m["url"].startswith("data:") for m in data["media"].values() if "url" in m)


def test_token_view_replays_one_sample(report: Path):
    data = _page_data((report / "report.html").read_text())
    trace = data["trace"]
    assert trace is not None, "unimoe_tiny can replay a sample's routing"
    layers = len(trace["top"])
    assert layers == 3 and all(len(layer) == len(trace["tokens"]) for layer in trace["top"])
    assert {t["m"] for t in trace["tokens"]} >= {"text", "image"}
    assert trace["labels"][-1] == "null" and len(trace["palette"]) == len(trace["labels"])
    assert all(0 <= e < len(trace["labels"]) for layer in trace["top"] for e in layer)


def test_compare_marks_changed_samples(tiny_run: Path, tmp_path):
    out = tmp_path / "runs"
    done = harness("run", "task=omniworld_image", "model=random", "data=sample", f"output_dir={out}",
                   "progress=false")
    assert done.returncode == 0, done.stderr[-2000:]
    (other,) = sorted((out / "runs").glob("*/"))
    done = harness("report", f"run={tiny_run}", f"compare={other}", f"out={tmp_path / 'page'}", "trace=none")
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "page" / "report.html").read_text()
    data = _page_data(text)
    ours = {json.loads(l)["doc_id"]: json.loads(l) for l in (tiny_run / "samples" / "omniworld_image.jsonl").open()}
    theirs = {json.loads(l)["doc_id"]: json.loads(l) for l in (other / "samples" / "omniworld_image.jsonl").open()}
    changed = {d for d in ours if ours[d]["prediction"] != theirs[d]["prediction"]}
    assert changed and {r["id"] for r in data["rows"] if r.get("c")} == changed
    assert data["compareLabel"].startswith("random")
    assert (tmp_path / "page" / "figures" / "run0-expert-usage.png").is_file()  # runs side by side
    assert 'id="f-changed"' in text


def test_media_budget_caps_the_page(tmp_path):
    from PIL import Image

    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (64, 64), (i * 80, 0, 0)).save(path)
        paths.append(path)
    store = MediaStore(budget=1)
    first = store.add(ImagePart(str(paths[0])))
    assert store.add(ImagePart(str(paths[0]))) == first, "one file is stored once"
    second = store.add(ImagePart(str(paths[1])))
    assert "url" in store.items[first] and "url" not in store.items[second]
    assert "budget" in store.items[second]["note"]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    store = MediaStore()
    assert "cannot show" in store.items[store.add(ImagePart(str(broken)))]["note"]


@pytest.mark.parametrize("args,message", [
    ([], "report needs run="),
    (["run=/nonexistent/run"], "no results.json"),
    (["run=.", "colour=red"], "unknown key(s) colour"),
])
def test_mistakes_get_one_line(args, message, tmp_path):
    done = harness("report", *args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_ten_thousand_samples_stay_one_small_page(tmp_path):
    from harness.report.build import build_report
    from harness.report.runs import load_run
    from tests.report.synthetic import write_run

    page = build_report(load_run(write_run(tmp_path, 10_000)), out=tmp_path / "page", trace="none")
    assert page.stat().st_size < 20 * 2**20
    text = page.read_text()
    data = _page_data(text)
    assert len(data["rows"]) == 10_000
    assert '<tbody id="sample-body"></tbody>' in text, "rows are drawn a page at a time in the browser"
    assert sum(r["s"] == "error" for r in data["rows"]) == 11  # every 997th sample crashed
    assert max(len(r["r"]) for r in data["rows"]) < 1_600, "long responses are clipped in the page"
    assert "cannot replay" not in text  # trace=none: no token view asked for
