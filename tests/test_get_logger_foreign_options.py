"""get_logger refuses an option no part of it takes, on every backend, and names what a
wandb/TensorBoard user meant.

Before: ``get_logger("runs", project="p", config={"lr": 1}, name="myrun")`` on a local root
was accepted: the run had no params, an automatic id and experiment ``default``, with no word
(local and memory roots took storage options and ignored them)."""

from __future__ import annotations

import uuid

import pytest

import distlog


@pytest.mark.parametrize("option, meant", [
    ("config", "exp.params.set(config)"), ("project", "exp.experiment(project)"),
    ("name", "exp.run(name)"), ("log_dir", "get_logger(log_dir)"), ("tags", "exp.run(id, tags=[...])"),
])
def test_another_loggers_argument_is_refused_with_distlogs_way(tmp_path, option, meant):
    with pytest.raises(TypeError, match=rf"{option}= is another logger's argument") as e:
        distlog.get_logger(str(tmp_path / "runs"), **{option: {"lr": 1} if option == "config" else "x"})
    assert meant in str(e.value)
    assert not (tmp_path / "runs").exists()


def test_local_and_memory_roots_refuse_storage_options(tmp_path):
    with pytest.raises(TypeError, match=r"a local root .* takes no storage options, got endpoint_url"):
        distlog.get_logger(str(tmp_path / "runs"), endpoint_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="memory:// roots take no storage options, got anon"):
        distlog.get_logger(f"memory://t-{uuid.uuid4().hex}/runs", anon=True)
    exp = distlog.get_logger(str(tmp_path / "runs"), heartbeat_interval=0)  # (run settings: taken)
    with exp.run("r", params={"lr": 1}):
        exp.metrics.log(step=0, x=1.0)
    assert distlog.open_run(tmp_path / "runs" / "default" / "r").params == {"lr": 1}


def test_a_registered_backend_takes_its_own_options_whatever_their_names(tmp_path, monkeypatch):
    from distlog.storage import registry
    from distlog.storage.local import LocalBackend

    class Backend(LocalBackend):  # (a filesystem of another scheme that takes config=, as ocifs)
        schemes = ("cfgfs",)

        def __init__(self, root, config=None):
            self.config = config
            super().__init__(str(tmp_path / root.split("://", 1)[1]))

    monkeypatch.setattr(registry, "_REGISTRY", {**registry._REGISTRY})
    import sys
    import types

    mod = types.ModuleType("distlog_test_cfgfs")
    mod.Backend = Backend
    monkeypatch.setitem(sys.modules, "distlog_test_cfgfs", mod)
    registry.register_backend("cfgfs", "distlog_test_cfgfs:Backend")
    exp = distlog.get_logger("cfgfs://bucket/runs", config={"profile": "x"})
    assert exp.storage.config == {"profile": "x"}
    with pytest.raises(TypeError, match="another logger's argument"):
        distlog.get_logger("GS://bucket/runs", name="x")  # (a built-in scheme, any case)
