"""The deadline guard: stop before Lambda kills the invocation mid-write."""

from __future__ import annotations

from collections.abc import Callable

from mediavault.errors import DeadlineReached


class Deadline:
    def __init__(self, remaining_ms: Callable[[], int], *, margin_seconds: float) -> None:
        self._remaining_ms = remaining_ms
        self._margin = margin_seconds

    def remaining(self) -> float:
        return self._remaining_ms() / 1000

    def check(self, stage: str) -> None:
        """Raise :class:`DeadlineReached` when less than the margin is left before ``stage``."""
        left = self.remaining()
        if left < self._margin:
            raise DeadlineReached(f"{left:.0f}s left before {stage}; releasing the job for another attempt")
