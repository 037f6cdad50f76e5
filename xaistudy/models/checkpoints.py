"""When a training run writes its resume checkpoint: at most every :data:`INTERVAL_S` seconds.

A checkpoint holds everything a run needs to resume exactly (weights, optimizer, history,
random states), so an interrupted run loses at most the training since the last one. Writing
one after every epoch cost more than the training itself for large models on short epochs
(a ResNet's weights and Adam's two moments, ~0.5 s an epoch); a clock bounds what an
interruption loses instead. The numbers of a run never depend on it.
"""

from __future__ import annotations

import time

#: the longest stretch of training (seconds) an interruption loses
INTERVAL_S = 30.0


class CheckpointClock:
    """``due()``: true when at least ``interval_s`` seconds have passed since the clock was
    made or since ``due()`` last returned true (``interval_s`` 0: after every epoch).
    ``interval_s`` None reads :data:`INTERVAL_S` now (tests set it to 0)."""

    def __init__(self, interval_s: float | None = None):
        self.interval_s = INTERVAL_S if interval_s is None else float(interval_s)
        if self.interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {self.interval_s}")
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True
