"""How many wrong tokens one client may offer: after ``limit`` failures within ``window`` seconds it is
refused (429, with Retry-After) until the oldest of them is older than the window.

Memory is bounded: at most ``limit`` failure times per client, and at most ``clients`` clients (the one
whose latest failure is oldest is forgotten first). The clock is injected, so the decisions are tested
without waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class Throttle:
    def __init__(self, limit: int = 20, window: float = 60.0, clients: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0 or clients < 1:
            raise ValueError("limit and clients must be at least 1, window above 0")
        self.limit = limit
        self.window = window
        self.clients = clients
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(client)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        with self._lock:
            times = self._recent(client)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.limit)
                while len(self._failures) > self.clients:
                    self._failures.popitem(last=False)
            times.append(self.clock())
            self._failures.move_to_end(client)

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times
