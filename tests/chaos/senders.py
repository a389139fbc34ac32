"""HTTP senders of the chaos tier that behave like real clients, and the hold that places a fault by progress.

A fault test must hit the load on a fast machine and on a slow one, so nothing here is timed by the wall
clock: the senders stop before a chosen batch until the fault has been placed (`hold_at`, `release`), run a
test's hook before a batch (`before`), and say how far they got (`batches_taken`, `in_flight`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

BATCH = 200
BATCH_HEADERS = {"Content-Type": "application/cloudevents-batch+json"}


def event_key(event: Mapping[str, Any]) -> tuple[str, str]:
    """An event's identity: (source, id)."""
    return (str(event["source"]), str(event["id"]))


def batches(events: Sequence[dict[str, Any]], size: int = BATCH) -> list[list[dict[str, Any]]]:
    """`events` cut into batches of `size`, in order."""
    return [list(events[i : i + size]) for i in range(0, len(events), size)]


@dataclass
class SendReport:
    """What the senders saw."""

    accepted: set[tuple[str, str]] = field(default_factory=set)
    requests: int = 0
    answered_202: int = 0
    answered_503: int = 0
    transport_errors: int = 0
    other: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def failures(self) -> int:
        """Requests that did not get a 202."""
        return self.requests - self.answered_202


class Senders:
    """Concurrent HTTP senders posting batches until each gets a 202, as a real gateway would.

    A request that fails (connection refused or reset, timeout, 503) is retried, honouring Retry-After,
    against wherever ingest listens now, until `give_up` seconds have passed. Like a client with a bounded
    in-flight window, a sender starts batch k only once every batch before k - `window` was taken, so
    retries reorder events by a few batches at most (well within the processor's lateness).
    """

    def __init__(self, url: Callable[[], str], token: str, concurrency: int = 4, timeout: float = 10.0,
                 give_up: float = 240.0, window: int | None = None, rate: float | None = None) -> None:
        self.url = url
        self.token = token
        self.concurrency = concurrency
        self.timeout = timeout
        self.give_up = give_up
        self.window = window or concurrency
        self.rate = rate
        self.report = SendReport()
        self._next_at = 0.0
        self._threads: list[threading.Thread] = []
        self._batches: list[list[dict[str, Any]]] = []
        self._before: Callable[[int], None] | None = None
        self._cond = threading.Condition()
        self._next = 0
        self._low = 0
        self._hold: int | None = None
        self._in_flight = 0
        self._done: list[bool] = []
        self._started = 0.0

    def start(self, batches: Iterable[Sequence[dict[str, Any]]], before: Callable[[int], None] | None = None,
              hold_at: int | None = None) -> Senders:
        """Send each batch (in order, `concurrency` at a time) from background threads. `before(k)` runs in
        the sender before batch k's first attempt; batches from `hold_at` on wait for `release()`."""
        self._batches = [list(batch) for batch in batches]
        self._done = [False] * len(self._batches)
        self._before = before
        self._hold = hold_at
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._run, name=f"sender-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def release(self) -> None:
        """Let the held batches go: the fault they waited for has been placed."""
        with self._cond:
            self._hold = None
            self._cond.notify_all()

    @property
    def batch_count(self) -> int:
        """How many batches there are to send."""
        return len(self._batches)

    @property
    def batches_taken(self) -> int:
        """How many batches got their 202 so far."""
        with self._cond:
            return sum(self._done)

    @property
    def batches_unsent(self) -> int:
        """How many batches no sender has started on yet: the load still to come."""
        with self._cond:
            return len(self._batches) - self._next

    def wait_until_in_flight(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until a request is on its way to ingest; whether one is."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight > 0, timeout)

    def join(self, timeout: float | None = None) -> SendReport:
        """Wait until every batch got its 202 (or a sender gave up); return the report."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.give_up + 30)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            self.report.errors.append("senders still running at the deadline")
        self.report.seconds = time.monotonic() - self._started
        return self.report

    def _take(self) -> int | None:
        with self._cond:
            while self._next < len(self._batches):
                held = self._hold is not None and self._next >= self._hold
                if self._next < self._low + self.window and not held:
                    self._next += 1
                    return self._next - 1
                self._cond.wait(0.5)
            return None

    def _finish(self, number: int) -> None:
        with self._cond:
            self._done[number] = True
            while self._low < len(self._done) and self._done[self._low]:
                self._low += 1
            self._cond.notify_all()

    def _pace(self, events: int) -> None:
        """Keep the senders, all together, at `rate` events a second (first attempts only)."""
        if not self.rate:
            return
        with self._cond:
            now = time.monotonic()
            at = max(now, self._next_at)
            self._next_at = at + events / self.rate
        if at > now:
            time.sleep(at - now)  # the send rate is the scenario's input, not the placing of a fault

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"}) as client:
            while (number := self._take()) is not None:
                try:
                    if self._before is not None:
                        self._before(number)
                    self._pace(len(self._batches[number]))
                    self._post_until_taken(client, self._batches[number])
                except Exception as exc:  # a sender must report, never die silently
                    with self.report.lock:
                        self.report.errors.append(f"batch {number}: {exc!r}")
                finally:
                    self._finish(number)

    def deliver(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        """Post one batch now, retrying until it is taken (for callers that pace themselves)."""
        self._post_until_taken(client, batch)

    def _post_until_taken(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        body = orjson.dumps(batch)
        deadline = time.monotonic() + self.give_up
        attempt = 0
        while True:
            status, retry_after = self._post(client, body)
            if status == 202:
                with self.report.lock:
                    self.report.accepted.update(event_key(e) for e in batch)
                return
            if status not in (0, 503):
                raise RuntimeError(f"ingest answered {status}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no 202 after {self.give_up:.0f}s")
            attempt += 1
            time.sleep(retry_after if retry_after is not None else min(2.0, 0.1 * 2**attempt))

    def _post(self, client: httpx.Client, body: bytes) -> tuple[int, float | None]:
        url = self.url()
        with self.report.lock:
            self.report.requests += 1
        if not url:
            with self.report.lock:
                self.report.transport_errors += 1
            return 0, None
        try:
            response = self._send(client, f"{url}/v1/events", body)
        except httpx.TransportError:
            with self.report.lock:
                self.report.transport_errors += 1
            return 0, None
        self._count(response.status_code)
        header = response.headers.get("Retry-After", "")
        return response.status_code, float(header) if header.strip().isdigit() else None

    def _send(self, client: httpx.Client, url: str, body: bytes) -> httpx.Response:
        """One POST, counted as in flight while it is on its way (a fault can wait for one)."""
        with self._cond:
            self._in_flight += 1
            self._cond.notify_all()
        try:
            return client.post(url, content=body, headers=BATCH_HEADERS)
        finally:
            with self._cond:
                self._in_flight -= 1

    def _count(self, status: int) -> None:
        with self.report.lock:
            if status == 202:
                self.report.answered_202 += 1
            elif status == 503:
                self.report.answered_503 += 1
            else:
                self.report.other[status] += 1
