"""Token buckets: how often one key (a participant, an address) may do something costly.

A `RateLimit` holds one bucket per key: `burst` tokens to start with, refilled at `rate`
tokens a second; each costly step takes a token or is refused with `rate_limited` (429).
Used before the steps a client can make the server work hard for: decoding a handwritten
mark, applying an SDP offer, signing a timestamp at `POST /tsa`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from tiaojie.server.errors import TiaojieError

#: Buckets kept per limit; the least recently used go first (a new key starts full).
MAX_KEYS = 10_000


@dataclass
class TokenBucket:
    """`tokens` left at `stamp` (monotonic seconds), refilled at `rate` up to `burst`."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens: 0.0 if taken, else the seconds until they would be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimit:
    """At most `burst` at once, then `rate` a second, of `what` per key."""

    def __init__(
        self,
        what: str,
        rate: float,
        burst: float,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.what = what
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def wait_for(self, key: Hashable) -> float:
        """Take a token for `key`: 0.0 if there was one, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def take(self, key: Hashable) -> None:
        """Take a token for `key`, or refuse with `rate_limited` (429)."""
        wait = self.wait_for(key)
        if wait > 0:
            raise TiaojieError(
                "rate_limited",
                f"Too many {self.what}; try again in {math.ceil(wait)} s.",
                429,
            )
