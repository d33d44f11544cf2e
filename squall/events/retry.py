"""When a failed asynchronous invocation runs again: exponential backoff with jitter.

The n-th retry waits `base * 2**(n-1)`, capped at `cap`, scaled by a random factor in
[0.5, 1.5) so that events that failed together do not retry together. With the default
base of 1 s, Lambda's two retries come about 1 s and 2 s after the failures (Lambda
waits 1 and 2 minutes; squall's base is set per node, `SQUALL_RETRY_BASE_SECONDS`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 1.0
    cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 for the first retry)."""
        raw = min(self.cap, self.base * 2 ** max(0, retry - 1))
        return raw * (0.5 + self.rng.random())
