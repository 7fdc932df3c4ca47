"""``smartpos bench fuzz``: the host under hostile frames, an authenticated field fuzz and
connection floods (docs/fault-injection.md, "Fuzzing the running host")."""

from smartpos.bench.fuzz.report import FuzzReport
from smartpos.bench.fuzz.runner import FuzzConfig, run_fuzz

__all__ = ["FuzzConfig", "FuzzReport", "run_fuzz"]
