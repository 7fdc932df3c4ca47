"""``smartpos bench …``: the benchmarks (docs/benchmarks.md)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from smartpos.commandline.app import UserError
from smartpos.commandline.options import (
    JsonOpt,
    PostgresUrlOpt,
)
from smartpos.commandline.result import Reply

if TYPE_CHECKING:
    pass

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks.")


@bench_app.command("cli")
def bench_cli(
    runs: Annotated[int, typer.Option(min=1, max=400, help="timed runs of each command")] = 20,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="port of the scratch demo host")
    ] = 18583,
    sales_json: Annotated[
        bool, typer.Option("--sales-json", help="time the sales with --json")
    ] = False,
    as_json: JsonOpt = False,
) -> Reply:
    """Wall time of terminal sale, terminal --help and import smartpos.cli, each a new
    process, against a demo host in a scratch data directory (docs/benchmarks.md)."""
    from smartpos.bench.cli import bench_cli as run_cli_bench
    from smartpos.bench.cli import render

    try:
        data = run_cli_bench(runs, port, json=sales_json)
    except (RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    message = f"terminal sale median {data['sale']['median_ms']} ms"
    return Reply(True, "ok", message, None, data, [render(data)])


@bench_app.command("service")
def bench_service(
    sales: Annotated[int, typer.Option(min=10, max=100_000, help="measured sales")] = 200,
    warmup: Annotated[int, typer.Option(min=0, max=10_000, help="unmeasured sales first")] = 20,
    as_json: JsonOpt = False,
) -> Reply:
    """The terminal service's in-process sale against a real host (TLS, durable ledgers)."""
    from smartpos.bench.service import run_service_bench

    try:
        data = run_service_bench(sales, warmup)
    except (RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    sale, again = data["sale"], data["repeated_order"]
    lines = [
        f"sale through the terminal service ({sales} sales): p50 {sale['p50_ms']} ms,"
        f" p90 {sale['p90_ms']} ms, p99 {sale['p99_ms']} ms, max {sale['max_ms']} ms",
        f"the same order again (answered from the journal): p50 {again['p50_ms']} ms,"
        f" p99 {again['p99_ms']} ms",
    ]
    return Reply(True, "ok", f"sale p50 {sale['p50_ms']} ms", None, data, lines)


@bench_app.command("host")
def bench_host(
    terminals: Annotated[
        int, typer.Option(min=1, max=1000, help="concurrent simulated terminals")
    ] = 16,
    seconds: Annotated[
        float, typer.Option(min=0.1, max=3600, help="measured seconds per phase")
    ] = 10.0,
    rate: Annotated[
        float,
        typer.Option(
            min=0,
            max=1_000_000,
            help="offered purchases/s (open loop); 0 = closed loop, as fast as answers come",
        ),
    ] = 0.0,
    tls: Annotated[bool, typer.Option("--tls/--no-tls")] = True,
    bare: Annotated[
        bool, typer.Option("--bare/--no-bare", help="also measure a bare server")
    ] = True,
    warmup: Annotated[float, typer.Option(min=0, max=600, help="unmeasured seconds first")] = 1.0,
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="host front-end processes (as host serve --workers)")
    ] = 0,
    db: PostgresUrlOpt = None,
    as_json: JsonOpt = False,
) -> Reply:
    """Purchases with PIN and MAC from N terminals against a host on a durable ledger."""
    from smartpos.bench.host import BenchConfig, render_table, run_bench, stderr_progress

    cfg = BenchConfig(
        terminals=terminals,
        seconds=seconds,
        rate=rate,
        tls=tls,
        bare=bare,
        warmup=warmup,
        workers=workers,
        db_server=db,
    )
    try:
        result = run_bench(cfg, progress=stderr_progress)
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    data = result.to_dict()
    lines = [render_table(result)]
    if not result.ledger_balanced:
        message = "the run's ledger does not balance"
        return Reply(False, "not_balanced", message, "inconsistent", data, lines)
    if result.host.errors:
        message = f"{result.host.errors} requests failed: {'; '.join(data['error_samples'])}"
        return Reply(False, "error", message, "incomplete", data, lines)
    return Reply(True, "ok", f"{data['approved_tps']} approved/s", None, data, lines)


@bench_app.command("fuzz")
def bench_fuzz(
    frames: Annotated[
        int, typer.Option(min=1, max=100_000_000, help="hostile and mutated frames to send")
    ] = 20_000,
    seconds: Annotated[
        float,
        typer.Option(
            min=1.0,
            max=86_400,
            help="length of the phases (calm and floods share it); a last calm then"
            " finishes the frames, for at most as long again",
        ),
    ] = 30.0,
    seed: Annotated[
        int | None, typer.Option(min=0, max=2**63 - 1, help="seed (default: random, printed)")
    ] = None,
    flood_links: Annotated[
        int, typer.Option(min=1, max=20_000, help="connections each flood keeps open")
    ] = 3000,
    flood_sources: Annotated[
        int, typer.Option(min=1, max=2500, help="loopback addresses the floods come from")
    ] = 48,
    flood_rate: Annotated[
        float, typer.Option(min=1.0, max=100_000, help="new flood connections a second, at most")
    ] = 1500.0,
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="host front-end processes (as host serve --workers)")
    ] = 0,
    rss_limit_mb: Annotated[
        float | None,
        typer.Option(
            min=1,
            max=1_000_000,
            help="fail if the host's peak resident memory exceeds this (default: 300 MB per"
            " host process)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> Reply:
    """Hostile frames, MACed field mutations and connection floods against a host on
    loopback, a terminal selling meanwhile; exit 1 unless the host held (no traceback,
    ledger balanced and every transfer approved, the sales approved, memory bounded)."""
    from smartpos.bench.fuzz import FuzzConfig, run_fuzz
    from smartpos.bench.fuzz.report import render
    from smartpos.bench.host import stderr_progress

    cfg = FuzzConfig(
        frames=frames,
        seconds=seconds,
        seed=seed,
        flood_links=flood_links,
        flood_sources=flood_sources,
        flood_rate=flood_rate,
        workers=workers,
        rss_limit_mb=rss_limit_mb,
    )
    command = "smartpos bench fuzz " + " ".join(sys.argv[3:])
    try:
        report = run_fuzz(cfg, progress=stderr_progress, command=command.strip())
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    data = report.to_dict()
    lines = [render(report)]
    if not report.ok:
        return Reply(
            False, "error", "the host did not hold (see the verdict)", "inconsistent", data, lines
        )
    return Reply(True, "ok", "the host held", None, data, lines)
