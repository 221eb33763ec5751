"""Executors: the same function over the same units gives the same results in unit order, in this process, in
worker processes and on a real local Ray instance; a unit whose worker is killed is redone elsewhere (once),
one whose worker always dies is given up alone, and a bug in a unit stops the run naming it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from novelcraft.executors import ExecutorConfig, ExecutorError, Unit, make_executor, read_lease
from novelcraft.executors.base import acquire_lease, release_lease, run_unit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # spawned workers get this sys.path; Ray workers get PYTHONPATH (below)
import units  # noqa: E402

HAS_RAY = importlib.util.find_spec("ray") is not None
ray_only = pytest.mark.skipif(not HAS_RAY, reason="needs the ray package (extra ray)")


def configs():
    return [
        pytest.param(ExecutorConfig(), id="inline"),
        pytest.param(ExecutorConfig(workers=2, threads=1), id="local-x2"),
        pytest.param(ExecutorConfig(type="ray", workers=2, threads=1), id="ray-x2", marks=[ray_only, pytest.mark.slow]),
    ]


@pytest.fixture
def ray_path(monkeypatch):
    """Ray's workers import the unit functions (and this checkout of novelcraft) by PYTHONPATH."""
    root = str(HERE.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), root, os.environ.get("PYTHONPATH", "")]))


def test_config_rules():
    assert ExecutorConfig().inline and ExecutorConfig().label() == "local"
    assert ExecutorConfig(workers=4).label() == "local x4"
    assert ExecutorConfig(type="ray", workers=8, address="auto").label() == "ray x8 @auto"
    with pytest.raises(ValueError, match="address: only for type ray"):
        ExecutorConfig(address="auto")
    with pytest.raises(ValueError):
        ExecutorConfig(workers=0)
    with pytest.raises(ValueError):
        ExecutorConfig(type="slurm")


def test_lease_counts_tries(tmp_path):
    lease = tmp_path / ".running.json"
    assert read_lease(lease) is None
    assert acquire_lease(lease, "host:1") == 1
    assert read_lease(lease)["pid"] == 1
    assert acquire_lease(lease, "host:2") == 2  # the first holder never released it: it died
    release_lease(lease)
    assert not lease.exists()
    result = run_unit(units.scaled, 3, Unit("u", 2, str(lease)))
    assert (result.value, result.tries, result.ok) == (6, 1, True) and not lease.exists()


@pytest.mark.parametrize("config", configs())
def test_results_in_unit_order_with_progress_and_stats(config, ray_path):
    executor = make_executor(config)
    heard, reports = [], []
    try:
        results = executor.map(
            units.scaled,
            10,
            [Unit(f"u{i}", i) for i in range(6)],
            on_result=lambda r: heard.append(r.key),
            on_report=lambda key, what, n: reports.append((key, what, n)),
        )
    finally:
        executor.close()
    assert [r.value for r in results] == [0, 10, 20, 30, 40, 50]
    assert [r.key for r in results] == [f"u{i}" for i in range(6)]
    assert sorted(heard) == [f"u{i}" for i in range(6)]
    assert sorted(reports) == [(f"u{i}", "done", 1) for i in range(6)]
    stats = executor.stats()
    assert stats.units == 6 and not stats.redone and not stats.lost
    assert sum(w.units for w in stats.per_worker.values()) == 6
    if not config.inline:
        assert all(r.worker and r.worker.split(":")[-1] != str(os.getpid()) for r in results)


@pytest.mark.parametrize("config", configs()[1:])
def test_worker_threads_are_capped(config, ray_path):
    executor = make_executor(config)
    try:
        [(worker, tries, threads)] = [r.value for r in executor.map(units.where, None, [Unit("u", 0)])]
    finally:
        executor.close()
    assert (tries, threads) == (1, "1")


@pytest.mark.parametrize("config", configs()[1:])
def test_a_killed_worker_s_unit_is_redone_elsewhere_once(config, tmp_path, ray_path):
    executor = make_executor(config)
    try:
        results = executor.map(
            units.dies_once, str(tmp_path), [Unit(f"u{i}", i, str(tmp_path / f"lease-{i}")) for i in range(5)]
        )
    finally:
        executor.close()
    assert [r.value for r in results] == [0, -1, -2, -3, -4]
    killed_pid = int((tmp_path / "died-3").read_text())
    assert results[3].tries == 2 and results[3].worker.split(":")[-1] != str(killed_pid)
    assert all(r.tries == 1 for i, r in enumerate(results) if i != 3)
    assert executor.stats().redone == ["u3"] and not executor.stats().lost
    assert not list(tmp_path.glob("lease-*"))  # every unit finished and released its lease


@pytest.mark.parametrize("config", configs()[1:])
def test_a_unit_that_always_kills_its_worker_is_lost_alone(config, ray_path):
    cfg = config.model_copy(update={"max_retries": 1})
    executor = make_executor(cfg)
    try:
        results = executor.map(units.always_dies, None, [Unit(f"u{i}", i) for i in range(4)])
    finally:
        executor.close()
    assert [r.value for r in results if r.ok] == [0, 1, 3]
    assert not results[2].ok and "u2: its worker died 2 times" in results[2].error
    assert executor.stats().lost == ["u2"]


@pytest.mark.parametrize("config", configs())
def test_a_bug_in_a_unit_stops_the_run_naming_it(config, ray_path):
    executor = make_executor(config)
    try:
        with pytest.raises((ExecutorError, ValueError), match="a bug in the unit") as info:
            executor.map(units.raises, None, [Unit(f"u{i}", i) for i in range(3)])
    finally:
        executor.close()
    if not config.inline:
        assert "u1: ValueError: a bug in the unit" in str(info.value)


@ray_only
@pytest.mark.slow
def test_ray_cannot_join_an_absent_cluster():
    executor = make_executor(ExecutorConfig(type="ray", workers=1, address="127.0.0.1:1"))
    with pytest.raises(ExecutorError, match=r"cannot start or join Ray \(127.0.0.1:1\)"):
        executor.map(units.scaled, 1, [Unit("u", 1)])
    executor.close()
