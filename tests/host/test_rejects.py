"""The reject log: one line per rejected frame, at most N a second per reason, and what is
held back is counted in a summary line."""

from __future__ import annotations

import logging

import pytest

from smartpos.host.rejects import RejectLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_at_most_n_lines_a_second_per_reason_then_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejects = RejectLog(logging.getLogger("test.rejects"), lines_per_s=5, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.rejects"):
        for i in range(1000):
            rejects.reject("format", "10.0.0.1:1000", f"frame {i}")
        rejects.reject("mac", "10.0.0.2:2000", "bad MAC")  # another reason has its own lines
        assert len(lines(caplog)) == 6
        assert lines(caplog)[0] == "rejected (format) 10.0.0.1:1000: frame 0"
        assert lines(caplog)[-1] == "rejected (mac) 10.0.0.2:2000: bad MAC"
        clock.now += 1.0
        rejects.flush()
        assert lines(caplog)[-1] == "rejected (format): … 995 more suppressed in the last 1.0 s"
        # The bucket refilled: lines again, and no summary while nothing was held back.
        rejects.reject("format", "10.0.0.1:1000", "frame 1000")
        rejects.flush(force=True)
    assert lines(caplog)[-1] == "rejected (format) 10.0.0.1:1000: frame 1000"
    assert rejects.counts == {"format": 1001, "mac": 1}


def test_a_held_back_count_is_reported_before_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejects = RejectLog(logging.getLogger("test.rejects"), lines_per_s=1, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.rejects"):
        for _ in range(3):
            rejects.reject("framing", "p", "x")
        clock.now += 0.5  # half a token: still held back
        rejects.reject("framing", "p", "x")
        clock.now += 0.6
        rejects.reject("framing", "p", "y")
    assert lines(caplog) == [
        "rejected (framing) p: x",
        "rejected (framing): … 3 more suppressed in the last 1.1 s",
        "rejected (framing) p: y",
    ]


def test_a_traceback_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    rejects = RejectLog(logging.getLogger("test.rejects"))
    with caplog.at_level(logging.WARNING, logger="test.rejects"):
        rejects.reject("format", "p", "no traceback")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            rejects.reject("internal error", "p", "link failed", traceback=True)
    plain, error = caplog.records
    assert plain.exc_info is None
    assert error.exc_info is not None and error.exc_info[0] is RuntimeError
