"""``smartpos bench host``: simulated terminals doing PIN purchases against a real host.

* The host runs in its own process (spawned, uvloop when available) on a durable SQLite
  ledger (WAL, ``synchronous=FULL``) in a temporary directory, behind TLS like the real link.
* The load generator runs in this process: N terminals, each with its own provisioned TID,
  its own bench card and its own connection. Each terminal signs on with a real 0800 (the
  host generates and wraps the working keys), then sends purchases. Every purchase has a
  fresh STAN, a real ISO 9564-0 PIN block encrypted under the terminal's TPK and a real
  X9.19 MAC under its TAK; every answer is decoded, matched (MTI, STAN, TID) and its MAC
  verified before it counts as approved.
* Closed loop (default): each terminal sends its next request when the answer arrives:
  maximum throughput. Open loop (``rate``): requests are scheduled at a fixed offered rate
  and latency is measured from the *scheduled* send time, so a slow host is not hidden by
  the generator waiting for it (no coordinated omission).
* Bare server: the same framing and TLS, answering each frame with a canned MACed 0210 at
  once (no decode, no database), driven by the same generator doing the same client work.
  Its throughput is the ceiling of this machine + generator; ``ratio`` = host / bare.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from smartpos.config import Settings
from smartpos.keys.keys import signon_mac_key, unpack_f62
from smartpos.keys.mac import compute_mac, verify_mac
from smartpos.keys.pinblock import encrypt_pin_block
from smartpos.protocol import codec
from smartpos.protocol.codec import Fields
from smartpos.protocol.framing import (
    Frame,
    FramingError,
    Tpdu,
    encode_frame,
    read_body,
)
from smartpos.protocol.messages import (
    ENTRY_MANUAL,
    F60,
    NET_SIGN_ON,
    PROC_PURCHASE,
    TYPE_NETWORK,
    TYPE_PURCHASE,
    entry_mode,
)
from smartpos.protocol.profiles import AcquirerProfile, get_profile
from smartpos.terminal.link import HostLink, InProcessLink, LinkError

log = logging.getLogger("smartpos.bench")

BENCH_MID = "898310048169999"
BENCH_MERCHANT = "bench merchant"
BENCH_PIN = "123456"
BENCH_EXPIRY = "3012"
BENCH_BALANCE_MINOR = 10**11
BATCH_NO = "000001"
CURRENCY_NUMERIC = "156"
# Fixed keys for the bare server (it does no key management).
_BARE_TAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
_BARE_TPK = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")

ProgressFn = Callable[[str], None]


def _event_loop_runner() -> Callable[[Any], Any]:
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover
        return asyncio.run


# -- configuration and results -------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    terminals: int = 16
    seconds: float = 10.0
    rate: float = 0.0  # offered purchases/s; 0 = closed loop
    tls: bool = True
    bare: bool = True
    warmup: float = 1.0
    amount_minor: int = 100
    profile: str = "sandbox"
    workers: int = 0  # host front-end processes (0: the host in one process)
    home: Path | None = None  # keep the host data here (default: a temporary directory)
    # A PostgreSQL server URL: the host's ledger goes to a scratch database there (created
    # for the run, dropped after). None: durable SQLite in ``home``.
    db_server: str | None = None


@dataclass
class PhaseResult:
    name: str
    approved: int = 0
    declined: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only
    error_samples: list[str] = field(default_factory=list)
    host_stats: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # measured window only

    def cpu_ms_per_approved(self) -> dict[str, float]:
        if not self.approved or not self.cpu_seconds:
            return {}
        out = {k: round(v / self.approved * 1000, 3) for k, v in self.cpu_seconds.items()}
        out["total"] = round(sum(self.cpu_seconds.values()) / self.approved * 1000, 3)
        return out

    @property
    def tps(self) -> float:
        return self.approved / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        data = sorted(self.latencies)
        k = min(len(data) - 1, max(0, round(p / 100 * len(data) + 0.5) - 1))
        return data[k] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "declined": self.declined,
            "errors": self.errors,
            "tps": round(self.tps, 1),
            "latency_ms_p50": round(self.percentile_ms(50), 3),
            "latency_ms_p95": round(self.percentile_ms(95), 3),
            "latency_ms_p99": round(self.percentile_ms(99), 3),
            "latency_ms_max": round(max(self.latencies) * 1000, 3) if self.latencies else 0.0,
        }


@dataclass
class BenchResult:
    config: BenchConfig
    host: PhaseResult
    bare: PhaseResult | None
    ledger_balanced: bool
    ledger_problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        h = self.host.summary()
        out: dict[str, Any] = {
            "terminals": self.config.terminals,
            "seconds": self.config.seconds,
            "offered_rate": self.config.rate or None,
            "mode": "open-loop" if self.config.rate else "closed-loop",
            "tls": self.config.tls,
            "host_workers": self.config.workers,
            "database": "postgresql" if self.config.db_server else "sqlite",
            "cpus": os.cpu_count(),
            "approved": h["approved"],
            "approved_tps": h["tps"],
            "latency_ms_p50": h["latency_ms_p50"],
            "latency_ms_p95": h["latency_ms_p95"],
            "latency_ms_p99": h["latency_ms_p99"],
            "latency_ms_max": h["latency_ms_max"],
            "declined": h["declined"],
            "errors": h["errors"],
            "error_samples": self.host.error_samples[:5],
            "host_batches": self.host.host_stats.get("batches"),
            "host_mean_batch": self.host.host_stats.get("mean_batch"),
            "host_writer": {
                k: self.host.host_stats.get(k)
                for k in ("decided", "decide_seconds", "commit_seconds")
            },
            "cpu_ms_per_approved": self.host.cpu_ms_per_approved(),
            "ledger_balanced": self.ledger_balanced,
            "ledger_problems": self.ledger_problems,
        }
        if self.bare is not None:
            b = self.bare.summary()
            out.update(
                {
                    "bare_tps": b["tps"],
                    "bare_latency_ms_p50": b["latency_ms_p50"],
                    "bare_latency_ms_p99": b["latency_ms_p99"],
                    "bare_errors": b["errors"] + b["declined"],
                    "ratio": round(self.host.tps / self.bare.tps, 3) if self.bare.tps else None,
                }
            )
        return out


# -- setup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchTerminal:
    tid: str
    mid: str
    tmk: bytes
    pan: str


def bench_pan(i: int) -> str:
    from smartpos.cards import luhn_check_digit

    body = f"6212349{i:08d}"
    return body + luhn_check_digit(body)


def _host_fingerprint(home: Path) -> str:
    """The bench host's certificate fingerprint, which the simulated terminals pin."""
    from smartpos.host.tls import ensure_certificate, fingerprint

    return fingerprint(ensure_certificate(Settings(home=home).host_dir)[0])


def prepare_host(home: Path, n: int, host_db_url: str | None = None) -> list[BenchTerminal]:
    """Create the durable host database, a merchant, N terminals and N bench cards."""
    from smartpos.host.sandbox import ensure_merchant, issue_card, open_host, provision_terminal
    from smartpos.host.testcards import TestCard
    from smartpos.host.tls import ensure_certificate

    settings = Settings(home=home, host_db_url=host_db_url)
    rt = open_host(settings, durable=True)
    ensure_certificate(settings.host_dir)
    ensure_merchant(rt, BENCH_MID, BENCH_MERCHANT)
    out = []
    with rt.engine.begin() as conn:
        for i in range(n):
            card = TestCard(
                bench_pan(i)[:-1],
                f"bench card {i}",
                "approved (00)",
                balance_minor=BENCH_BALANCE_MINOR,
                pin=BENCH_PIN,
                expiry=BENCH_EXPIRY,
            )
            issue_card(rt, conn, card)
    for i in range(n):
        prov = provision_terminal(rt, f"B{i:07d}", BENCH_MID)
        out.append(BenchTerminal(prov.tid, prov.mid, prov.tmk, bench_pan(i)))
    rt.engine.dispose()
    return out


def check_ledger(home: Path, host_db_url: str | None = None) -> tuple[bool, list[str]]:
    from smartpos.host.ledger import check
    from smartpos.host.sandbox import open_host

    rt = open_host(Settings(home=home, host_db_url=host_db_url), durable=True)
    try:
        with rt.engine.connect() as conn:
            report = check(conn)
        return report.balanced, list(report.problems)
    finally:
        rt.engine.dispose()


# -- server processes ----------------------------------------------------------------------


async def _wait_for_stop() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)


def _ready(port: int) -> None:
    print(f"ready {port}", flush=True)


def _writer_stats(s: Any) -> dict[str, Any]:
    return {
        "batches": s.batches,
        "decided": s.decided,
        "decide_seconds": round(s.decide_seconds, 3),
        "commit_seconds": round(s.commit_seconds, 3),
    }


def _host_process(home: str, tls: bool, profile: str, workers: int, db_url: str | None) -> None:
    from smartpos.logs import setup_logging

    setup_logging(logging.WARNING)

    async def single() -> dict[str, Any]:
        from smartpos import bootstrap

        settings = Settings(home=Path(home), host_db_url=db_url)
        rt = bootstrap.host_runtime(settings, durable=True)
        service = bootstrap.host_service(rt, profile)
        server = bootstrap.host_server(settings, service, tls=tls)
        await server.start("127.0.0.1", 0)
        _ready(server.port)
        await _wait_for_stop()
        await server.close()
        rt.engine.dispose()
        s = service.stats
        return {"requests": s.requests, **_writer_stats(s)}

    async def cluster() -> dict[str, Any]:
        from smartpos.host.cluster import serve_cluster

        stop = asyncio.Event()

        async def ready(port: int) -> None:
            _ready(port)

            async def wait() -> None:
                await _wait_for_stop()
                stop.set()

            asyncio.get_running_loop().create_task(wait())

        settings = Settings(home=Path(home), host_bind="127.0.0.1", host_db_url=db_url)
        s = await serve_cluster(settings, 0, tls, profile, workers, ready, stop=stop)
        return {**_writer_stats(s), "workers": workers}

    async def main() -> None:
        stats = await (cluster() if workers else single())
        print(json.dumps(stats), flush=True)

    _event_loop_runner()(main())


def bare_response(profile: AcquirerProfile) -> bytes:
    """The bare server's canned answer: a realistic MACed 0210 approval frame."""
    now = datetime.now()
    fields: Fields = {
        "t": "0210",
        "3": PROC_PURCHASE,
        "4": f"{100:012d}",
        "11": "000000",
        "12": now.strftime("%H%M%S"),
        "13": now.strftime("%m%d"),
        "25": "00",
        "37": "000000000001",
        "38": "000001",
        "39": "00",
        "41": "BARE0000",
        "42": BENCH_MID,
        "49": CURRENCY_NUMERIC,
        "60": F60(TYPE_PURCHASE, BATCH_NO).encode(),
    }
    message = codec.encode(fields, mac=lambda d: compute_mac(profile.mac_algorithm, _BARE_TAK, d))
    tpdu = Tpdu(profile.terminal_nii, profile.host_nii)
    return encode_frame(Frame(tpdu, profile.app_header, message))


def _bare_process(home: str, tls: bool, profile: str) -> None:
    async def main() -> None:
        from smartpos.host.tls import ensure_certificate, server_context

        prof = get_profile(profile)
        canned = bare_response(prof)
        ctx = server_context(*ensure_certificate(Path(home) / "host")) if tls else None
        frames = 0

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal frames
            try:
                while True:
                    await read_body(reader)
                    frames += 1
                    writer.write(canned)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, FramingError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(client, "127.0.0.1", 0, ssl=ctx, backlog=1024)
        _ready(server.sockets[0].getsockname()[1])
        await _wait_for_stop()
        server.close()
        print(json.dumps({"requests": frames}), flush=True)

    _event_loop_runner()(main())


class ServerProcess:
    """A server in its own interpreter (``python -m smartpos.bench.host host|bare``): it
    prints ``ready PORT``, serves until a line arrives on its stdin, then prints its stats
    as one JSON line."""

    def __init__(
        self,
        kind: str,
        home: Path,
        tls: bool,
        profile: str,
        workers: int = 0,
        db_url: str | None = None,
    ):
        self.args = [
            sys.executable,
            "-m",
            "smartpos.bench.host",
            kind,
            str(home),
            "tls" if tls else "plain",
            profile,
            str(workers),
            db_url or "-",
        ]
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> int:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            self.proc.kill()
            raise RuntimeError(f"server process failed to start: {line}")
        return int(line[1])

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            out, _ = self.proc.communicate("stop\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return {}
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


# -- the load generator ---------------------------------------------------------------------


class SimTerminal:
    """One simulated terminal: its keys, its STAN counter, its connection."""

    def __init__(
        self,
        tid: str,
        mid: str,
        pan: str,
        tmk: bytes | None,
        profile: AcquirerProfile,
        amount_minor: int,
        bare: bool,
    ) -> None:
        self.tid, self.mid, self.pan, self.tmk = tid, mid, pan, tmk
        self.profile = profile
        self.amount = f"{amount_minor:012d}"
        self.bare = bare
        self.stan = 0
        self.tpk: bytes | None = _BARE_TPK if bare else None
        self.tak: bytes | None = _BARE_TAK if bare else None
        self._link: HostLink | None = None
        self._service: Any = None  # an in-process HostService instead of a socket (attach)
        self._static: Fields = {
            "3": PROC_PURCHASE,
            "4": self.amount,
            "2": pan,
            "14": BENCH_EXPIRY,
            "22": entry_mode(ENTRY_MANUAL, True),
            "25": "00",
            "26": "12",
            "53": "2600000000000000",
            "41": tid,
            "42": mid,
            "49": CURRENCY_NUMERIC,
            "60": F60(TYPE_PURCHASE, BATCH_NO).encode(),
        }

    async def connect(self, host: str, port: int, fingerprint: str | None) -> None:
        """Open the terminal's own link (smartpos.terminal.link.HostLink: the same framing,
        TLS pinning and timeouts as a real terminal's) to the host."""
        self._link = HostLink(host, port, self.profile, fingerprint)
        await self._link.connect()

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()

    def _next_stan(self) -> str:
        self.stan = self.stan % 999_999 + 1
        return f"{self.stan:06d}"

    def attach(self, service: Any) -> None:
        """From now on talk to ``service``, a HostService in this process, instead of over
        a connection (harnesses and tests that drive the host without the network)."""
        self._service = service

    async def through(self, service: Any, message: bytes) -> bytes:
        """``message`` handled by the in-process ``service``, framed as on the wire; the
        answer's message."""
        try:
            return await InProcessLink(service, self.profile).exchange(message)
        except LinkError:
            raise ConnectionError("the host did not answer") from None

    async def _exchange(self, message: bytes) -> bytes:
        if self._service is not None:
            return await self.through(self._service, message)
        assert self._link is not None
        try:
            return await self._link.exchange(message)
        except LinkError as exc:
            raise ConnectionError(str(exc)) from None

    async def sign_on(self) -> None:
        assert self.tmk is not None
        now = datetime.now()
        req: Fields = {
            "t": "0800",
            "11": self._next_stan(),
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "41": self.tid,
            "42": self.mid,
            "60": F60(TYPE_NETWORK, BATCH_NO, NET_SIGN_ON).encode(),
            "63": "01 ",
        }
        key, alg = signon_mac_key(self.tmk), self.profile.mac_algorithm
        mac = (lambda d: compute_mac(alg, key, d)) if self.profile.mac_required else None
        resp = codec.decode(await self._exchange(codec.encode(req, mac=mac)))
        if resp.get("39") != "00" or "62" not in resp:
            raise RuntimeError(f"sign-on of {self.tid} refused: {resp.get('39')}")
        keys = unpack_f62(self.tmk, bytes.fromhex(resp["62"]))
        self.tpk, self.tak = keys.tpk, keys.tak

    def build_purchase(self) -> tuple[str, bytes]:
        """A fresh purchase request: new STAN, real PIN block, real MAC."""
        assert self.tpk is not None and self.tak is not None
        now = datetime.now()
        stan = self._next_stan()
        fields = {
            "t": "0200",
            "11": stan,
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            **self._static,
            "52": encrypt_pin_block(self.tpk, BENCH_PIN, self.pan).hex().upper(),
        }
        tak, alg = self.tak, self.profile.mac_algorithm
        return stan, codec.encode(fields, mac=lambda d: compute_mac(alg, tak, d))

    def check_answer(self, stan: str, raw: bytes) -> str:
        """'00' for a trusted approval, the response code for a decline; raises on a bad
        answer (mismatch or MAC failure)."""
        resp = codec.decode(raw)
        if resp.get("t") != "0210":
            raise ValueError(f"answer MTI {resp.get('t')}")
        if not self.bare and (resp.get("11") != stan or resp.get("41") != self.tid):
            raise ValueError("answer does not match the request")
        assert self.tak is not None
        if "64" not in resp:
            if resp.get("39") == "00":
                raise ValueError("approval without a MAC")
            return resp.get("39", "")
        data, mac = codec.mac_input(raw)
        if not verify_mac(self.profile.mac_algorithm, self.tak, data, mac):
            raise ValueError("answer MAC does not verify")
        return resp.get("39", "")

    async def purchase(self) -> str:
        stan, message = self.build_purchase()
        return self.check_answer(stan, await self._exchange(message))


def _proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux /proc), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def cpu_probe(server_pid: int, workers: int) -> Callable[[], dict[str, float]]:
    """CPU seconds so far of each part of a run: the generator (this process), the host
    (or, with front-end processes, its writer and the front-ends together)."""

    def probe() -> dict[str, float]:
        out = {"generator": time.process_time()}
        server = _proc_cpu_seconds(server_pid)
        if server is not None:
            out["writer" if workers else "host"] = server
        if workers:
            fronts = [_proc_cpu_seconds(c) for c in _children(server_pid)]
            out["front-ends"] = sum(f for f in fronts if f is not None)
        return out

    return probe


class _Clock:
    def __init__(self, warmup: float, seconds: float) -> None:
        self.start = time.perf_counter()
        self.measure_from = self.start + warmup
        self.measure_to = self.measure_from + seconds


async def _drive(
    terminals: list[SimTerminal],
    result: PhaseResult,
    cfg: BenchConfig,
    progress: ProgressFn | None,
    probe: Callable[[], dict[str, float]] | None = None,
) -> None:
    clock = _Clock(cfg.warmup, cfg.seconds)
    counts = {"approved": 0}

    def record(sent: float, done: float, rc: str | None, error: str | None) -> None:
        if rc == "00":
            counts["approved"] += 1
        if not (clock.measure_from <= done < clock.measure_to):
            return
        if error is not None:
            result.errors += 1
            if len(result.error_samples) < 10:
                result.error_samples.append(error)
        elif rc == "00":
            result.approved += 1
            result.latencies.append(done - sent)
        else:
            result.declined += 1
            if len(result.error_samples) < 10:
                result.error_samples.append(f"declined {rc}")

    async def one(t: SimTerminal) -> tuple[str | None, str | None]:
        try:
            return await t.purchase(), None
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            FramingError,
            ssl.SSLError,
            ValueError,
        ) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def closed(t: SimTerminal) -> None:
        now = time.perf_counter
        while now() < clock.measure_to:
            sent = now()
            rc, error = await one(t)
            record(sent, now(), rc, error)
            if error is not None:
                return  # link is unusable after an error

    async def opened(t: SimTerminal, index: int) -> None:
        interval = len(terminals) / cfg.rate
        due = clock.start + index * interval / len(terminals)
        now = time.perf_counter
        while due < clock.measure_to:
            delay = due - now()
            if delay > 0:
                await asyncio.sleep(delay)
            rc, error = await one(t)
            record(due, now(), rc, error)  # latency from the scheduled send time
            if error is not None:
                return
            due += interval

    async def report() -> None:
        last, last_n = clock.start, 0
        while True:
            await asyncio.sleep(1.0)
            t = time.perf_counter()
            n = counts["approved"]
            if progress is not None:
                phase = "warm-up" if t < clock.measure_from else "measuring"
                progress(
                    f"{result.name}: {t - clock.start:5.1f}s {phase}: "
                    f"{(n - last_n) / (t - last):8.0f} approved/s, {n} approved, "
                    f"{result.errors} errors"
                )
            last, last_n = t, n

    async def measure_cpu() -> None:
        if probe is None:
            return
        await asyncio.sleep(max(0.0, clock.measure_from - time.perf_counter()))
        start = probe()
        await asyncio.sleep(max(0.0, clock.measure_to - time.perf_counter()))
        end = probe()
        result.cpu_seconds = {k: round(end[k] - start[k], 3) for k in start if k in end}

    reporter = asyncio.create_task(report())
    cpu = asyncio.create_task(measure_cpu())
    if cfg.rate:
        await asyncio.gather(*(opened(t, i) for i, t in enumerate(terminals)))
    else:
        await asyncio.gather(*(closed(t) for t in terminals))
    await cpu
    reporter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reporter
    result.elapsed = min(time.perf_counter(), clock.measure_to) - clock.measure_from


async def _run_phase(
    name: str,
    port: int,
    sims: list[SimTerminal],
    cfg: BenchConfig,
    progress: ProgressFn | None,
    probe: Callable[[], dict[str, float]] | None = None,
    fingerprint: str | None = None,
) -> PhaseResult:
    result = PhaseResult(name)
    await asyncio.gather(*(s.connect("127.0.0.1", port, fingerprint) for s in sims))
    if name == "host":
        await asyncio.gather(*(s.sign_on() for s in sims))
    try:
        await _drive(sims, result, cfg, progress, probe)
    finally:
        await asyncio.gather(*(s.close() for s in sims))
    return result


def run_bench(cfg: BenchConfig, progress: ProgressFn | None = None) -> BenchResult:
    """Run the host phase (and the bare phase) and check the ledger afterwards."""
    if cfg.terminals < 1 or cfg.seconds <= 0:
        raise ValueError("terminals must be ≥ 1 and seconds > 0")
    profile = get_profile(cfg.profile)
    profile = replace(profile, tls=cfg.tls)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if cfg.home is None:
        tmp = tempfile.TemporaryDirectory(prefix="smartpos-bench-")
        home = Path(tmp.name)
    else:
        home = cfg.home
    run = _event_loop_runner()
    scratch = contextlib.ExitStack()
    try:
        db_url = None
        if cfg.db_server:
            from smartpos.db.scratch import scratch_database

            db_url = scratch.enter_context(scratch_database(cfg.db_server, "smartpos_bench"))
        if progress:
            where = "a scratch PostgreSQL database" if db_url else str(home)
            progress(f"preparing host in {where}: {cfg.terminals} terminals and cards")
        setups = prepare_host(home, cfg.terminals, db_url)
        pin = _host_fingerprint(home) if cfg.tls else None
        host_proc = ServerProcess("host", home, cfg.tls, cfg.profile, cfg.workers, db_url)
        port = host_proc.start()
        try:
            sims = [
                SimTerminal(s.tid, s.mid, s.pan, s.tmk, profile, cfg.amount_minor, False)
                for s in setups
            ]
            assert host_proc.proc is not None
            probe = cpu_probe(host_proc.proc.pid, cfg.workers)
            host_result = run(_run_phase("host", port, sims, cfg, progress, probe, pin))
        finally:
            stats = host_proc.stop()
        if stats.get("batches"):
            stats["mean_batch"] = round(stats["decided"] / stats["batches"], 1)
        host_result.host_stats = stats
        balanced, problems = check_ledger(home, db_url)
        bare_result = None
        if cfg.bare:
            bare_proc = ServerProcess("bare", home, cfg.tls, cfg.profile)
            port = bare_proc.start()
            try:
                sims = [
                    SimTerminal("BARE0000", BENCH_MID, s.pan, None, profile, cfg.amount_minor, True)
                    for s in setups
                ]
                bare_result = run(_run_phase("bare", port, sims, cfg, progress, None, pin))
            finally:
                bare_result_stats = bare_proc.stop()
            if bare_result is not None:
                bare_result.host_stats = bare_result_stats
        return BenchResult(cfg, host_result, bare_result, balanced, problems)
    finally:
        scratch.close()
        if tmp is not None:
            tmp.cleanup()


# -- presentation --------------------------------------------------------------------------


def render_table(result: BenchResult) -> Any:
    from rich.table import Table

    d = result.to_dict()
    cfg = result.config
    mode = f"open loop at {cfg.rate:g}/s offered" if cfg.rate else "closed loop"
    table = Table(
        title=f"smartpos bench host — {cfg.terminals} terminals, {cfg.seconds:g}s, "
        f"{mode}, TLS {'on' if cfg.tls else 'off'}, {os.cpu_count()} CPUs"
    )
    table.add_column("")
    table.add_column("host (durable ledger)", justify="right")
    if result.bare is not None:
        table.add_column("bare server", justify="right")
    h, b = result.host.summary(), result.bare.summary() if result.bare else None
    rows = [
        ("approved/s", "tps", "{:,.1f}"),
        ("approved", "approved", "{:,}"),
        ("declined", "declined", "{:,}"),
        ("errors", "errors", "{:,}"),
        ("latency p50 ms", "latency_ms_p50", "{:.2f}"),
        ("latency p95 ms", "latency_ms_p95", "{:.2f}"),
        ("latency p99 ms", "latency_ms_p99", "{:.2f}"),
        ("latency max ms", "latency_ms_max", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        cells = [label, fmt.format(h[key])]
        if b is not None:
            cells.append(fmt.format(b[key]))
        table.add_row(*cells)
    if d.get("ratio") is not None:
        table.add_row("host / bare", f"{d['ratio']:.3f}", *([""] if b is not None else []))
    table.add_row(
        "mean writer batch", str(d.get("host_mean_batch")), *([""] if b is not None else [])
    )
    for part, ms in d.get("cpu_ms_per_approved", {}).items():
        table.add_row(f"CPU ms / purchase: {part}", f"{ms:.3f}", *([""] if b is not None else []))
    table.add_row(
        "ledger",
        "balanced" if result.ledger_balanced else "NOT BALANCED",
        *([""] if b is not None else []),
    )
    return table


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":  # the server processes
    _kind, _home, _tls, _profile, _workers, _db = sys.argv[1:7]
    if _kind == "host":
        _host_process(_home, _tls == "tls", _profile, int(_workers), None if _db == "-" else _db)
    else:
        _bare_process(_home, _tls == "tls", _profile)
