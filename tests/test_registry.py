"""Registries: lazy built-ins, entry points for outside packages, and no imports named by configs."""

from __future__ import annotations

import pytest

from harness.catalog import parse_entry
from harness.registry import Registry


def _install_fake_distribution(tmp_path, monkeypatch):
    pkg = tmp_path / "outside_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "class EchoModel:\n"
        "    def __init__(self, name='echo'):\n        self.name = name\n"
        "    def fingerprint(self):\n        return 'echo'\n"
        "    def generate(self, requests):\n"
        "        from harness.api import Response\n"
        "        return [Response(text=r.text()) for r in requests]\n"
    )
    dist = tmp_path / "outside_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[unimoe_harness.models]\necho = outside_pkg:EchoModel\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_outside_package_adds_a_model_through_entry_points(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, monkeypatch)
    registry = Registry("model adapter", entry_point_group="unimoe_harness.models")
    assert "echo" in registry
    model = registry.get("echo")(name="echo")
    from harness.api import Message, Request

    (resp,) = model.generate([Request("t", "1", (Message.user("hi"),))])
    assert resp.text == "hi"


def test_builtins_are_lazy_and_duplicates_rejected():
    registry = Registry("thing")
    registry.register("json_dumps", "json:dumps")
    assert registry.get("json_dumps")([1]) == "[1]"
    with pytest.raises(ValueError, match="already registered"):
        registry.register("json_dumps", "json:loads")
    with pytest.raises(KeyError, match="unknown thing 'nope'"):
        registry.get("nope")


def test_a_task_config_cannot_name_a_module_to_import(tmp_path):
    from harness.catalog import build_task

    cfg = parse_entry({"name": "evil", "group": "text", "plugin": "os:system"})
    with pytest.raises(KeyError, match="unknown task plugin 'os:system'"):
        build_task(cfg)
    with pytest.raises(ValueError, match="unknown config keys"):
        parse_entry({"name": "x", "group": "text", "exec": "rm -rf /"})
