"""The host's log of rejected frames and links: one line each, rate-limited per reason.

Anyone who can reach the port can send garbage as fast as the link carries it; one log line
(let alone a traceback) per bad frame would let them fill the disk and drown every other
message. So each reason ("framing", "format", "mac", …) has a token bucket: at most
``lines_per_s`` lines a second (bursts up to the same number), and what is held back is
counted and reported in one summary line per reason, at most once a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

LINES_PER_S = 10
SUMMARY_INTERVAL_S = 1.0


@dataclass
class _Bucket:
    tokens: float
    refilled_at: float
    suppressed: int = 0
    summarized_at: float = 0.0


class RejectLog:
    """Logs rejects of hostile or broken input without letting them flood the log."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        lines_per_s: int = LINES_PER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lines_per_s < 1:
            raise ValueError("lines_per_s must be ≥ 1")
        self.logger = logger
        self.lines_per_s = lines_per_s
        self.clock = clock
        self.counts: dict[str, int] = {}  # every reject by reason, logged or not
        self._buckets: dict[str, _Bucket] = {}

    def reject(self, reason: str, peer: str, detail: str, *, traceback: bool = False) -> None:
        """Count one reject; log ``rejected (reason) peer: detail`` unless this
        reason already used its lines for the moment. ``traceback`` (for unexpected
        errors only, inside an ``except``) adds the exception's traceback to the line."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = self.clock()
        bucket = self._buckets.get(reason)
        if bucket is None:
            bucket = self._buckets[reason] = _Bucket(float(self.lines_per_s), now, 0, now)
        bucket.tokens = min(
            float(self.lines_per_s), bucket.tokens + (now - bucket.refilled_at) * self.lines_per_s
        )
        bucket.refilled_at = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            self._summarize(reason, bucket, now, force=False)
            return
        bucket.tokens -= 1.0
        self._summarize(reason, bucket, now, force=True)
        self.logger.warning(
            "rejected (%s) %s: %s", reason, peer, detail, exc_info=traceback or None
        )

    def flush(self, *, force: bool = False) -> None:
        """Write the summary of every reason with held-back lines (those whose last
        summary is older than a second, or all of them with ``force``)."""
        now = self.clock()
        for reason, bucket in self._buckets.items():
            self._summarize(reason, bucket, now, force=force)

    def _summarize(self, reason: str, bucket: _Bucket, now: float, *, force: bool) -> None:
        if not bucket.suppressed:
            return
        if not force and now - bucket.summarized_at < SUMMARY_INTERVAL_S:
            return
        self.logger.warning(
            "rejected (%s): … %d more suppressed in the last %.1f s",
            reason,
            bucket.suppressed,
            now - bucket.summarized_at,
        )
        bucket.suppressed = 0
        bucket.summarized_at = now
