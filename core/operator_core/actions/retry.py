"""Retry timing: exponential backoff with jitter, computed by tenacity's wait strategies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from operator_core.clock import utcnow


@dataclass
class RetryConfig:
    """How failed actions are retried.

    ``max_attempts`` is the default number of retries after the first attempt for new
    proposals; each proposal's own ``max_retries`` is the limit that counts.
    """

    max_attempts: int = 3
    min_wait_seconds: float = 1.0
    max_wait_seconds: float = 60.0
    exponential_base: float = 2.0
    jitter_fraction: float = 0.5

    def delay_seconds(self, attempt: int) -> float:
        """Wait before retry number ``attempt`` (0 for the first retry): exponential from
        min_wait up to max_wait, plus up to ``jitter_fraction`` of it at random."""
        # Imported on first use: every process imports this module (the dashboard too, whose
        # start-up it would slow), few ever compute a retry.
        from tenacity import RetryCallState, wait_exponential, wait_random

        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt + 1  # tenacity counts from 1: base * exp_base**(n-1)
        backoff = wait_exponential(
            multiplier=self.min_wait_seconds,
            exp_base=self.exponential_base,
            min=self.min_wait_seconds,
            max=self.max_wait_seconds,
        )
        wait = float(backoff(state))
        jitter = wait_random(0, wait * self.jitter_fraction)
        return wait + float(jitter(state))

    def calculate_next_retry(self, attempt: int, now: datetime | None = None) -> datetime:
        """When retry number ``attempt`` should run (timezone-aware UTC)."""
        return (now or utcnow()) + timedelta(seconds=self.delay_seconds(attempt))

    def should_retry(self, retry_count: int) -> bool:
        """True while fewer than ``max_attempts`` retries have been made."""
        return retry_count < self.max_attempts
