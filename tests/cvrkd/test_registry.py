import pytest

from cvrkd.checkpoint import untrained
from cvrkd.train.registry import ModelRegistry, RegistryError


def test_add_promote_rollback_and_run_log(tmp_path):
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.current() is None and registry.runs() == []
    first = registry.add(*untrained("student", seed=1))
    second = registry.add(*untrained("student", seed=2))
    assert registry.current() is None  # adding never serves
    registry.promote(first)
    registry.promote(second)
    assert registry.current() == second and registry.current_path().name == second
    assert registry.rollback() == first and registry.current() == first
    registry.rollback(second)
    assert registry.current() == second
    assert [h["reason"] for h in registry.history()] == ["promoted", "promoted", "rollback", "rollback"]
    registry.record_run({"run_id": "a", "decision": "rejected"})
    registry.record_run({"run_id": "b", "decision": "promoted"})
    assert [r["run_id"] for r in registry.runs()] == ["a", "b"]


def test_unknown_versions_and_empty_rollback_are_refused(tmp_path):
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError):
        registry.rollback()
    with pytest.raises(RegistryError):
        registry.promote("deadbeef0000")


def test_torn_run_line_is_ignored(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.record_run({"run_id": "ok"})
    with open(registry.runs_file, "a") as handle:
        handle.write('{"run_id": "torn')
    assert [r["run_id"] for r in registry.runs()] == ["ok"]
