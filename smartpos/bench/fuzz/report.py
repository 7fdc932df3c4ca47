"""The report of a fuzz run: what was sent, what came back, what the host logged, what its
ledger and memory did, and whether a terminal could still sell — and the verdict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartpos.bench.fuzz.audit import AuditResult
from smartpos.bench.fuzz.floods import FloodStats

if TYPE_CHECKING:
    from smartpos.bench.fuzz.runner import FuzzConfig


@dataclass
class FuzzReport:
    config: FuzzConfig
    seed: int
    command: str
    duration_s: float = 0.0
    frames_done_s: float = 0.0  # when the frame budget was spent (0: not within the run)
    host_cpu_s: float = 0.0
    fuzzer_cpu_s: float = 0.0
    frames_by_kind: Counter[str] = field(default_factory=Counter)
    answers_by_code: Counter[str] = field(default_factory=Counter)
    closes: int = 0
    silent: int = 0
    connect_failed: int = 0  # the fuzzer's own connections the host did not take
    unexpected: Counter[str] = field(default_factory=Counter)  # kind → answer, per §10.2
    host_96: int = 0
    tracebacks: int = 0
    log_lines: int = 0
    rejects_logged: Counter[str] = field(default_factory=Counter)
    rejects_suppressed: Counter[str] = field(default_factory=Counter)
    host_exit: int | None = None
    audit: AuditResult | None = None
    approved_requests: int = 0
    rss_mb_by_phase: dict[str, float] = field(default_factory=dict)
    rss_mb_peak: float = 0.0
    floods: list[FloodStats] = field(default_factory=list)
    terminal_sales: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(self.frames_by_kind.values())

    @property
    def ok(self) -> bool:
        a = self.audit
        return (
            self.tracebacks == 0
            and self.host_96 == 0
            and not self.unexpected
            and self.host_exit == 0
            and a is not None
            and a.balanced
            and not a.unattributed
            and bool(self.terminal_sales)
            and all(s["result"] == "approved" for s in self.terminal_sales)
            and self.rss_mb_peak <= self.config.rss_limit
            and not any(f.still_served for f in self.floods)
        )

    def to_dict(self) -> dict[str, Any]:
        a = self.audit
        return {
            "ok": self.ok,
            "command": self.command,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 1),
            "frames_done_s": round(self.frames_done_s, 1),
            "cpu_s": {"host": round(self.host_cpu_s, 1), "fuzzer": round(self.fuzzer_cpu_s, 1)},
            "frames": self.frames,
            "frames_by_kind": dict(sorted(self.frames_by_kind.items())),
            "answers_by_code": dict(sorted(self.answers_by_code.items())),
            "closes": self.closes,
            "no_answer": self.silent,
            "fuzzer_connects_failed": self.connect_failed,
            "unexpected_answers": dict(self.unexpected),
            "host_96": self.host_96,
            "host_tracebacks": self.tracebacks,
            "host_log_lines": self.log_lines,
            "rejects_logged": dict(sorted(self.rejects_logged.items())),
            "rejects_suppressed": dict(sorted(self.rejects_suppressed.items())),
            "host_exit": self.host_exit,
            "ledger_balanced": a.balanced if a else None,
            "ledger_problems": a.ledger_problems if a else None,
            "approved_requests": self.approved_requests,
            "transfers_made": a.new_transfers if a else None,
            "transfers_unattributed": a.unattributed[:20] if a else None,
            "rss_mb_peak": round(self.rss_mb_peak, 1),
            "rss_mb_limit": self.config.rss_limit,
            "rss_mb_by_phase": {k: round(v, 1) for k, v in self.rss_mb_by_phase.items()},
            "floods": [vars(f) for f in self.floods],
            "terminal_sales": self.terminal_sales,
        }


def read_host_log(path: Path, report: FuzzReport) -> None:
    """Tracebacks and reject lines in the host's log."""
    for line in path.read_text(errors="replace").splitlines():
        report.log_lines += 1
        if line.startswith("Traceback"):
            report.tracebacks += 1
        if " rejected (" in line:
            reason = line.split(" rejected (", 1)[1].split(")", 1)[0]
            if "more suppressed" in line:
                count = line.split("… ", 1)[1].split()[0]
                report.rejects_suppressed[reason] += int(count)
            else:
                report.rejects_logged[reason] += 1


def render(report: FuzzReport) -> Any:
    """The report as a rich table (the JSON form has every count)."""
    from rich.table import Table

    d = report.to_dict()
    table = Table(title=f"smartpos bench fuzz — seed {report.seed}, {d['duration_s']} s")
    table.add_column("")
    table.add_column("", justify="right")
    kinds = Counter[str]()
    for kind, count in report.frames_by_kind.items():
        kinds["authenticated (MACed) " + kind.split()[1] if kind.startswith("auth") else kind] += (
            count
        )
    table.add_row("frames sent", f"{report.frames:,}")
    for kind, count in sorted(kinds.items()):
        table.add_row(f"  {kind}", f"{count:,}")
    table.add_row(
        "answers by code", ", ".join(f"{k}: {v:,}" for k, v in d["answers_by_code"].items())
    )
    table.add_row("links closed by the host / no answer", f"{report.closes:,} / {report.silent:,}")
    table.add_row("answers outside §10.2", str(sum(report.unexpected.values())))
    table.add_row(
        "96 answers / tracebacks in the host log", f"{report.host_96} / {report.tracebacks}"
    )
    table.add_row(
        "host log lines (rejects logged, suppressed)",
        f"{report.log_lines:,} ({sum(report.rejects_logged.values()):,},"
        f" {sum(report.rejects_suppressed.values()):,})",
    )
    a = report.audit
    if a is not None:
        table.add_row("ledger", "balanced" if a.balanced else "NOT BALANCED")
        table.add_row(
            "transfers made / not from an approved request",
            f"{a.new_transfers:,} / {len(a.unattributed)}",
        )
    table.add_row(
        "host peak RSS MB", f"{report.rss_mb_peak:.0f} (limit {report.config.rss_limit:g})"
    )
    for phase, mb in d["rss_mb_by_phase"].items():
        table.add_row(f"  during {phase}", f"{mb:.0f}")
    for sale in report.terminal_sales:
        table.add_row(
            f"terminal sale during {sale['phase']}",
            f"{sale['result']} {sale['response_code']} in {sale['seconds']} s",
        )
    for flood in report.floods:
        table.add_row(
            f"flood {flood.kind}",
            f"{flood.opened:,} opened, {flood.closed_by_host:,} closed by the host,"
            f" {flood.peak_open:,} open at most"
            + (f", {flood.still_served} still served" if flood.kind == "slow-reader" else ""),
        )
    table.add_row("verdict", "held" if report.ok else "FAILED")
    return table
