"""Smoke test of ``smartpos bench host``: a short run approves purchases, with no errors,
and leaves a balanced ledger. No timing assertions (CI machines vary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartpos.bench.host import BenchConfig, check_ledger, run_bench


@pytest.mark.integration
def test_bench_host_smoke(tmp_path: Path) -> None:
    home = tmp_path / "bench"
    result = run_bench(BenchConfig(terminals=2, seconds=2.0, warmup=0.5, home=home))
    data = result.to_dict()
    assert result.host.approved > 0, data
    assert result.host.errors == 0 and result.host.declined == 0, data
    assert result.ledger_balanced, data
    # The host's own ledger, reopened from disk after the host process stopped.
    balanced, problems = check_ledger(home)
    assert balanced, problems
    assert result.bare is not None and result.bare.approved > 0 and result.bare.errors == 0
    assert data["ratio"] is not None and data["approved_tps"] > 0


@pytest.mark.integration
def test_bench_host_open_loop_no_tls(tmp_path: Path) -> None:
    result = run_bench(
        BenchConfig(
            terminals=2,
            seconds=1.0,
            warmup=0.3,
            rate=50,
            tls=False,
            bare=False,
            home=tmp_path / "bench",
        )
    )
    assert result.host.approved > 0
    assert result.host.errors == 0 and result.host.declined == 0
    assert result.ledger_balanced
    assert result.bare is None


@pytest.mark.integration
def test_bench_host_with_front_end_processes(tmp_path: Path) -> None:
    home = tmp_path / "bench"
    cfg = BenchConfig(terminals=4, seconds=1.5, warmup=0.3, bare=False, workers=2, home=home)
    result = run_bench(cfg)
    data = result.to_dict()
    assert result.host.approved > 0 and result.host.errors == 0, data
    assert data["host_workers"] == 2
    # CPU per purchase of each part of the run, from /proc: all three parts did work.
    cpu = data["cpu_ms_per_approved"]
    assert cpu["generator"] > 0 and cpu["writer"] > 0 and cpu["front-ends"] > 0, cpu
    assert abs(cpu["total"] - cpu["generator"] - cpu["writer"] - cpu["front-ends"]) < 0.01
    # Every purchase the terminals saw approved was decided by the writer, and balanced.
    assert data["host_writer"]["decided"] >= result.host.approved
    assert result.ledger_balanced, data


@pytest.mark.integration
def test_host_cpu_script_runs() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "host_cpu.py"),
            "--terminals",
            "2",
            "--rounds",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "10 purchases" in done.stdout and "µs a purchase" in done.stdout, done.stdout


@pytest.mark.integration
@pytest.mark.postgres
def test_bench_host_on_postgres_uses_and_drops_a_scratch_database(tmp_path: Path) -> None:
    import psycopg

    from tests.pg import SERVER_URL

    def scratch_databases() -> set[str]:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'smartpos_bench_%'"
            ).fetchall()
        return {r[0] for r in rows}

    before = scratch_databases()
    cfg = BenchConfig(
        terminals=2, seconds=1.0, warmup=0.3, bare=False, home=tmp_path, db_server=SERVER_URL
    )
    result = run_bench(cfg)
    data = result.to_dict()
    assert data["database"] == "postgresql", data
    assert result.host.approved > 0 and result.host.errors == 0, data
    assert result.ledger_balanced, data
    assert not (tmp_path / "host" / "host.db").exists()  # the ledger was not on SQLite
    assert scratch_databases() == before


@pytest.mark.integration
def test_bench_service_smoke() -> None:
    """Every measured sale was approved (the bench raises otherwise) and no repeated order
    reference was sent again; the figures are there. No timing assertions."""
    from smartpos.bench.service import run_service_bench

    data = run_service_bench(sales=10, warmup=1)
    assert data["sales"] == 10
    assert 0 < data["sale"]["p50_ms"] <= data["sale"]["p99_ms"] <= data["sale"]["max_ms"]
    assert data["repeated_order"]["p50_ms"] > 0
