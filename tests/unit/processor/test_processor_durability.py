"""The commit guard's wait: every record tracked before it is acknowledged, later ones do not hold it."""

from __future__ import annotations

import asyncio

import pytest

from services.processor.durability import BatchAbandoned, ChangelogWriteFailed, DurableTable


def _table() -> DurableTable:
    table = object.__new__(DurableTable)  # the tracking state only: no faust app needed
    table._unacked = set()
    table._failure = None
    table._fatal = None
    return table


async def _ack_soon(future: asyncio.Future[None], exc: BaseException | None = None) -> None:
    await asyncio.sleep(0.01)
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


def test_the_wait_returns_once_earlier_records_are_acked_even_while_new_ones_keep_coming() -> None:
    async def scenario() -> tuple[bool, int]:
        table = _table()
        loop = asyncio.get_running_loop()
        earlier = loop.create_future()
        table.track(earlier)
        acker = asyncio.ensure_future(_ack_soon(earlier))
        later = loop.create_future()  # sent after the wait began: never acked during it
        waiting = asyncio.ensure_future(table.wait_acknowledged())
        await asyncio.sleep(0)
        table.track(later)
        await asyncio.wait_for(waiting, 1.0)  # would time out if it waited for `later` too
        await acker
        still_pending = table.unacked
        later.cancel()
        return earlier.done(), still_pending

    done, still_pending = asyncio.run(scenario())
    assert done and still_pending == 1


@pytest.mark.parametrize(
    ("poisoned", "error"),
    [(False, ChangelogWriteFailed), (True, BatchAbandoned)],
    ids=["a failed write", "a batch stopped half-way"],
)
def test_the_wait_raises_after_a_failed_write_or_a_poisoned_batch(poisoned: bool, error: type) -> None:
    async def scenario() -> None:
        table = _table()
        future = asyncio.get_running_loop().create_future()
        table.name = "licensees"
        table.track(future)
        if poisoned:
            table.poison(RuntimeError("stopped"))
        await _ack_soon(future, None if poisoned else RuntimeError("refused"))
        await table.wait_acknowledged()

    with pytest.raises(error):
        asyncio.run(scenario())
