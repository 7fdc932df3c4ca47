"""``smartpos bench cli`` (smartpos/bench/cli.py): its statistics, and one real round."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from smartpos.bench.cli import bench_cli, render, summary


def test_summary_is_median_p90_min_max() -> None:
    times = [float(t) for t in range(10, 0, -1)]  # 10 … 1 ms
    assert summary(times) == {
        "runs": 10,
        "median_ms": 5.5,
        "p90_ms": 9.0,
        "min_ms": 1.0,
        "max_ms": 10.0,
    }
    assert summary([2.0, 4.0], [1.0, 3.0])["cpu_median_ms"] == 2.0
    assert summary([3.14159]) == {
        "runs": 1,
        "median_ms": 3.1,
        "p90_ms": 3.1,
        "min_ms": 3.1,
        "max_ms": 3.1,
    }


def test_out_of_range_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="runs"):
        bench_cli(runs=0)
    with pytest.raises(ValueError, match="port"):
        bench_cli(runs=1, port=70000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch_homes() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("smartpos-bench-cli-*"))


@pytest.mark.integration
@pytest.mark.parametrize("as_json", [False, True])
def test_a_real_round(as_json: bool) -> None:
    before = _scratch_homes()
    result = bench_cli(runs=2, port=_free_port(), json=as_json)
    assert result["json"] is as_json and result["runs"] == 2
    for name in ("sale", "help", "import"):
        assert result[name]["runs"] == 2
        assert 0 < result[name]["min_ms"] <= result[name]["median_ms"] <= result[name]["max_ms"]
        assert result[name]["cpu_median_ms"] > 0
    assert "terminal sale --pin" in render(result)
    assert _scratch_homes() == before  # the scratch data directory is gone


@pytest.mark.integration
def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="smartpos demo exited"):
            bench_cli(runs=1, port=taken.getsockname()[1])
