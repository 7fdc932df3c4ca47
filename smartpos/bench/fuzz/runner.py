"""``smartpos bench fuzz``: hostile frames, an authenticated field fuzz and connection floods
against a running host (its own process, durable SQLite, TLS, uvloop — as ``host serve``),
with a real terminal selling during every flood. Loopback only, bounded in frames and
seconds, seeded.

Phases, each a share of ``seconds``: calm, then one flood each (raw TCP, stuck handshakes,
idle TLS links, slow readers), then calm again. The frame fuzz runs across all phases until
``frames`` frames are sent: the last calm goes on until then, for at most ``seconds`` more.
Afterwards the host is stopped, its log read (tracebacks, reject lines) and its ledger
audited (:mod:`smartpos.bench.fuzz.audit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from smartpos.bench.fuzz.audit import Approvals, audit, transfer_ids
from smartpos.bench.fuzz.floods import Flood
from smartpos.bench.fuzz.frames import ALLOWED_CODES, CLOSING, HostileFrames, Identity
from smartpos.bench.fuzz.mutate import FieldFuzzer, Keys
from smartpos.bench.fuzz.report import FuzzReport, read_host_log
from smartpos.bench.host import BENCH_MID, BENCH_PIN, SimTerminal, prepare_host
from smartpos.config import Settings
from smartpos.protocol import codec
from smartpos.protocol.framing import FramingError, read_body
from smartpos.protocol.profiles import AcquirerProfile, get_profile
from smartpos.protocol.tls import pinned_client_context

PHASES = (("calm", 0.1), ("raw", 0.2), ("handshake", 0.2), ("idle-tls", 0.2),
          ("slow-reader", 0.2), ("calm-after", 0.1))  # fmt: skip
ANSWER_TIMEOUT_S = 5.0
TERMINAL_TID = "F0000001"
HOST_START_TIMEOUT_S = 60.0
SAMPLE_INTERVAL_S = 0.2
PROGRESS_INTERVAL_S = 30.0
RSS_LIMIT_MB_PER_PROCESS = 300.0  # the writer and each front-end

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class FuzzConfig:
    frames: int = 20_000
    seconds: float = 30.0
    seed: int | None = None
    auth_terminals: int = 6  # signed-on terminals whose requests are mutated and MACed
    hostile_links: int = 4  # connections sending hostile frames without a valid MAC
    flood_links: int = 3000  # connections each flood keeps open (re-opened when closed)
    flood_sources: int = 48  # loopback addresses the floods come from
    flood_rate: float = 1500.0  # new flood connections a second, at most
    workers: int = 0  # host front-end processes (as host serve --workers)
    rss_limit_mb: float | None = None  # fail above this peak; None: 300 MB per host process

    @property
    def rss_limit(self) -> float:
        return self.rss_limit_mb or RSS_LIMIT_MB_PER_PROCESS * (1 + self.workers)


# -- the host process -------------------------------------------------------------------------


class HostProcess:
    """The host in its own interpreter (``python -m smartpos.bench.host host``), its log in a
    file, its resident memory sampled."""

    def __init__(self, home: Path, workers: int, log_path: Path) -> None:
        self.args = [sys.executable, "-m", "smartpos.bench.host", "host", str(home), "tls",
                     "sandbox", str(workers), "-"]  # fmt: skip
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> int:
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            self.proc.kill()
            raise RuntimeError(f"host process failed to start: {self.log_path.read_text()}")
        return int(line[1])

    def cpu_s(self) -> float:
        """User + system CPU seconds of the host and its front-ends so far."""
        assert self.proc is not None
        return sum(_cpu_s(p) for p in [self.proc.pid, *_children(self.proc.pid)])

    def rss_mb(self) -> float:
        """Resident memory of the host and its front-end processes now."""
        assert self.proc is not None
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return sum(_rss_kb(p) for p in pids) / 1024

    def stop(self) -> int | None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.communicate("stop\n", timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


# -- links of the fuzzer ----------------------------------------------------------------------


class Link:
    """One TLS connection of the fuzzer, from a given loopback address."""

    def __init__(self, port: int, source: str, profile: AcquirerProfile) -> None:
        self.port, self.source, self.profile = port, source, profile
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1",
                self.port,
                ssl=pinned_client_context(),
                local_addr=(self.source, 0),
            )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    async def send_and_close(self, wire: bytes) -> None:
        """Send ``wire`` and hang up at once (a frame promising more than it carries)."""
        if self._writer is None:
            await self._connect()
        assert self._writer is not None
        self._writer.write(wire)
        await self._writer.drain()
        await self.close()

    async def exchange_raw(self, wire: bytes) -> tuple[str, bytes | None]:
        """Send ``wire``; ("answer", frame body) or ("closed" | "silent", None). Raises
        OSError or TimeoutError when it cannot connect."""
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(wire)
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                return "answer", await read_body(self._reader)
        except TimeoutError:
            await self.close()
            return "silent", None
        except (asyncio.IncompleteReadError, ConnectionError, OSError, FramingError):
            await self.close()
            return "closed", None

    async def exchange(self, wire: bytes) -> tuple[str, dict[str, str] | None]:
        """Send ``wire``; ("answer", fields) or ("closed" | "silent" | "garbled" |
        "connect failed", None)."""
        try:
            outcome, body = await self.exchange_raw(wire)
        except (OSError, TimeoutError):
            await self.close()
            return "connect failed", None
        if body is None:
            return outcome, None
        try:
            return "answer", codec.decode(body[5 + self.profile.header_len :])
        except codec.MessageError:
            return "garbled", None

    async def handle(self, body: bytes) -> bytes | None:
        """The in-process service interface of SimTerminal.attach (its sign-on)."""
        _, answer = await self.exchange_raw(len(body).to_bytes(2, "big") + body)
        return None if answer is None else len(answer).to_bytes(2, "big") + answer


# -- the run ----------------------------------------------------------------------------------


class Run:
    def __init__(self, cfg: FuzzConfig, report: FuzzReport, progress: ProgressFn | None) -> None:
        self.cfg, self.report, self.progress = cfg, report, progress
        self.profile = get_profile("sandbox")
        self.approvals = Approvals()
        self.sent = 0
        self.stop = asyncio.Event()
        self.phase = "calm"
        self.started = time.monotonic()

    def _budget(self) -> bool:
        """Take one frame of the budget; False when it is spent or the run is over."""
        if self.sent >= self.cfg.frames or self.stop.is_set():
            return False
        self.sent += 1
        return True

    async def hostile(self, index: int, port: int, who: Identity) -> None:
        rng = random.Random(f"{self.report.seed}:hostile:{index}")
        frames = HostileFrames(rng, self.profile, who)
        link = Link(port, f"127.0.4.{index + 1}", self.profile)
        while self._budget():
            kind, wire = frames.next()
            self.report.frames_by_kind[kind] += 1
            if kind == "length-truncated":
                with contextlib.suppress(OSError, TimeoutError):
                    await link.send_and_close(wire)
                self.report.closes += 1
                continue
            outcome, answer = await link.exchange(wire)
            self._count(kind, outcome, answer, hostile=True)
            if kind in CLOSING or outcome != "answer":
                await link.close()
        await link.close()

    async def authenticated(self, index: int, port: int, setup: Any, pans: list[str]) -> None:
        rng = random.Random(f"{self.report.seed}:auth:{index}")
        link = Link(port, f"127.0.3.{index + 1}", self.profile)
        sim = SimTerminal(setup.tid, setup.mid, setup.pan, setup.tmk, self.profile, 100, False)
        sim.attach(link)
        await sim.sign_on()
        assert sim.tpk is not None and sim.tak is not None
        keys = Keys(setup.tid, setup.mid, setup.pan, BENCH_PIN, sim.tpk, sim.tak)
        fuzzer = FieldFuzzer(rng, self.profile, keys, tuple(pans))
        while self._budget():
            txn, op, sent, message = fuzzer.next()
            self.report.frames_by_kind[f"auth {txn} {op}"] += 1
            wire = len(body := _frame_body(self.profile, message)).to_bytes(2, "big") + body
            outcome, answer = await link.exchange(wire)
            self._count("auth", outcome, answer, hostile=False)
            if answer is not None:
                self.approvals.record(answer)
                fuzzer.learn(txn, sent, answer)
        await link.close()

    def _count(
        self, kind: str, outcome: str, answer: dict[str, str] | None, *, hostile: bool
    ) -> None:
        r = self.report
        if answer is None:
            if outcome == "silent":
                r.silent += 1
            elif outcome == "connect failed":
                r.connect_failed += 1
            else:
                r.closes += 1
            if outcome == "garbled":
                r.unexpected[f"{kind}: garbled answer"] += 1
            return
        code = answer.get("39", "")
        r.answers_by_code[code] += 1
        if code == "96":
            r.host_96 += 1
        if hostile:
            echo = answer.get("t") == "0830" and code == "00"
            if kind in CLOSING or not (code in ALLOWED_CODES or echo):
                r.unexpected[f"{kind}: {code}"] += 1

    async def sample_rss(self, host: HostProcess) -> None:
        next_progress = time.monotonic() + PROGRESS_INTERVAL_S
        while True:
            if self.progress and time.monotonic() >= next_progress:
                next_progress += PROGRESS_INTERVAL_S
                self.progress(
                    f"{time.monotonic() - self.started:6.0f}s {self.phase}: {self.sent:,} frames,"
                    f" host RSS {host.rss_mb():.0f} MB, {self.report.closes:,} closes"
                )
            rss = host.rss_mb()
            r = self.report
            r.rss_mb_peak = max(r.rss_mb_peak, rss)
            r.rss_mb_by_phase[self.phase] = max(r.rss_mb_by_phase.get(self.phase, 0.0), rss)
            r.host_cpu_s = max(r.host_cpu_s, host.cpu_s())
            if self.sent >= self.cfg.frames and not r.frames_done_s:
                r.frames_done_s = time.monotonic() - self.started
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    async def phases(self, port: int, terminal: Any, floods: Callable[[str], Flood | None]) -> None:
        from smartpos.cards.reading import CardInput
        from smartpos.host.testcards import CATALOGUE
        from smartpos.terminal.engine import TerminalError

        card = CATALOGUE[0]
        for name, share in PHASES:
            self.phase = name
            length_s = self.cfg.seconds * share
            flood = floods(name)
            flood_stop = asyncio.Event()
            running = asyncio.ensure_future(flood.run(flood_stop)) if flood else None
            await asyncio.sleep(length_s / 2)
            # A real terminal, on a fresh connection, sells while the flood is on.
            await terminal.link.close()
            started = time.monotonic()
            try:
                result = await terminal.sale(100, CardInput.parse(card.pan), card.pin)
                outcome = (result.result, result.response_code, result.message)
            except TerminalError as exc:
                result, outcome = None, ("error", "", str(exc))
            took_s = time.monotonic() - started
            self.report.terminal_sales.append(
                {
                    "phase": name,
                    "result": outcome[0],
                    "response_code": outcome[1],
                    "seconds": round(took_s, 3),
                    "message": outcome[2][:80],
                }
            )
            if result is not None and result.result == "approved":
                self.approvals.requests[(TERMINAL_TID, "0200", _mmdd(), result.stan)] = (
                    f"{result.amount_minor:012d}"
                )
            if self.progress:
                self.progress(
                    f"{name}: {self.sent:,} frames, terminal sale {outcome[0]} in"
                    f" {took_s:.2f}s, host RSS {self.report.rss_mb_by_phase.get(name, 0):.0f} MB"
                )
            await asyncio.sleep(length_s / 2)
            if running is not None:
                flood_stop.set()
                self.report.floods.append(await running)
        # The floods slow the frames down; the last calm goes on until the frame budget is
        # spent, at most as long again as the whole run (bounded in time either way).
        overrun_until = time.monotonic() + self.cfg.seconds
        while self.sent < self.cfg.frames and time.monotonic() < overrun_until:
            await asyncio.sleep(min(0.2, max(0.0, overrun_until - time.monotonic())))
        self.stop.set()


def _mmdd() -> str:
    return time.strftime("%m%d")


def _frame_body(profile: AcquirerProfile, message: bytes) -> bytes:
    from smartpos.protocol.framing import Frame, Tpdu, encode_frame

    return encode_frame(Frame(Tpdu(profile.host_nii, profile.terminal_nii),
                              profile.app_header, message))[2:]  # fmt: skip


def _prepare(home: Path, cfg: FuzzConfig) -> tuple[list[Any], list[str], Any]:
    """The host's database: bench terminals and cards, the test cards, the real terminal."""
    from smartpos.host.sandbox import open_host, provision_terminal, seed_test_cards
    from smartpos.host.testcards import CATALOGUE

    setups = prepare_host(home, cfg.auth_terminals)
    rt = open_host(Settings(home=home), durable=True)
    seed_test_cards(rt)
    real = provision_terminal(rt, TERMINAL_TID, BENCH_MID)
    rt.engine.dispose()
    return setups, [c.pan for c in CATALOGUE], real


def _terminal(home: Path, port: int, real: Any) -> Any:
    from smartpos.host.tls import fingerprint
    from smartpos.terminal.engine import Terminal
    from smartpos.terminal.link import HostLink
    from smartpos.terminal.setup import open_terminal_db, provision

    tset = Settings(home=home / "terminal")
    rt = open_terminal_db(tset, durable=False)
    fp = fingerprint(home / "host" / "host-cert.pem")
    provision(rt, tid=real.tid, mid=real.mid, merchant_name="fuzz", tmk=real.tmk,
              tmk_kcv=real.tmk_kcv, link_host="127.0.0.1", link_port=port,
              host_fingerprint=fp, profile="sandbox")  # fmt: skip
    profile = get_profile("sandbox")
    return Terminal(rt.engine, rt.vault, profile, HostLink("127.0.0.1", port, profile, fp))


async def _run(
    cfg: FuzzConfig, home: Path, report: FuzzReport, progress: ProgressFn | None
) -> None:
    from smartpos.host.sandbox import open_host

    setups, pans, real = _prepare(home, cfg)
    rt = open_host(Settings(home=home), durable=True)
    with rt.engine.connect() as conn:
        before = transfer_ids(conn)
    rt.engine.dispose()
    host = HostProcess(home, cfg.workers, home / "host.log")
    port = host.start()
    run = Run(cfg, report, progress)
    sampler = asyncio.ensure_future(run.sample_rss(host))
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        terminal = _terminal(home, port, real)
        signed = await terminal.sign_on()
        if signed.result != "approved":
            raise RuntimeError(f"the terminal could not sign on: {signed.message}")
        sources = [f"127.0.{10 + i // 250}.{1 + i % 250}" for i in range(cfg.flood_sources)]
        who = Identity(setups[0].tid, setups[0].mid, setups[0].pan)
        slow_frames = HostileFrames(random.Random(report.seed), run.profile, who)

        def flood(name: str) -> Flood | None:
            if name.startswith("calm"):
                return None
            request = slow_frames.kinds["unknown-terminal"] if name == "slow-reader" else None
            links = cfg.flood_links if name != "slow-reader" else max(1, cfg.flood_links // 50)
            return Flood(name, port, sources, links, cfg.flood_rate, request)

        workers = [
            *(run.hostile(i, port, who) for i in range(cfg.hostile_links)),
            *(run.authenticated(i, port, s, pans) for i, s in enumerate(setups)),
        ]
        await asyncio.gather(run.phases(port, terminal, flood), *workers)
        await terminal.link.close()
    finally:
        report.duration_s = time.monotonic() - started
        report.fuzzer_cpu_s = time.process_time() - cpu_started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        report.host_exit = host.stop()
    read_host_log(host.log_path, report)
    report.approved_requests = len(run.approvals.requests)
    rt = open_host(Settings(home=home), durable=True)
    try:
        with rt.engine.connect() as conn:
            report.audit = audit(conn, before, run.approvals)
    finally:
        rt.engine.dispose()


def run_fuzz(cfg: FuzzConfig, progress: ProgressFn | None = None, command: str = "") -> FuzzReport:
    """Run the fuzz (in a temporary directory) and return its report."""
    if cfg.frames < 1 or cfg.seconds <= 0 or cfg.auth_terminals < 1 or cfg.hostile_links < 1:
        raise ValueError("frames, seconds, auth terminals and hostile links must be ≥ 1")
    if cfg.flood_sources < 1 or cfg.flood_sources > 2500 or cfg.flood_links < 1:
        raise ValueError("flood sources must be 1..2500 and flood links ≥ 1")
    seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
    report = FuzzReport(replace(cfg, seed=seed), seed, command)
    if progress:
        progress(f"fuzz seed={seed}")
    with tempfile.TemporaryDirectory(prefix="smartpos-fuzz-") as tmp:
        try:
            import uvloop

            uvloop.run(_run(report.config, Path(tmp), report, progress))
        except ImportError:  # pragma: no cover
            asyncio.run(_run(report.config, Path(tmp), report, progress))
    return report
