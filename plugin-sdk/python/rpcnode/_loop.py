"""Runs a plugin's coroutines to completion inside the call that started them.

asyncio's own loop needs a self-pipe (a socketpair), which a plugin does not
have. A plugin has nothing to wait on but time, so this loop waits for its
next timer by sleeping, and an await that nothing could ever complete is an
error rather than a hang.

Most async handlers never suspend (they await other coroutines that return
at once): a coroutine is first stepped by hand, with the loop marked as
running, and only one that suspends is handed to the loop as a task.
"""

import asyncio
import inspect
import time
import types
from asyncio import events


class _Clock:
    """The selector of a loop with no files to watch: waiting is sleeping."""

    def select(self, timeout):
        if timeout is None:
            raise RuntimeError("the coroutine awaits something that nothing in a plugin can complete")
        if timeout > 0:
            time.sleep(timeout)
        return []


class _Loop(asyncio.BaseEventLoop):
    def __init__(self):
        super().__init__()
        self._selector = _Clock()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


_loop = None


def run(awaitable):
    """The result of ``awaitable``, run on this instance's loop (made on first
    use and kept: making one costs more than most calls); tasks it left
    running are cancelled when it is done."""
    global _loop
    if _loop is None:
        _loop = _Loop()
    if inspect.iscoroutine(awaitable):
        try:
            waiting_on = _step(awaitable)
        except StopIteration as done:
            # It never suspended; unless it started a task (which schedules
            # its first step at once), it left nothing to cancel.
            if _loop._ready:
                _cancel_left_tasks()
            return done.value
        except BaseException:
            _cancel_left_tasks()
            raise
        awaitable = _resumed(awaitable, waiting_on)
    try:
        return _loop.run_until_complete(awaitable)
    finally:
        _cancel_left_tasks()


def _step(coroutine):
    """Step ``coroutine`` once by hand, with the loop marked as running."""
    events._set_running_loop(_loop)
    try:
        return coroutine.send(None)
    finally:
        events._set_running_loop(None)


def _cancel_left_tasks():
    """Cancel the tasks a run left behind, and let them end."""
    left = asyncio.all_tasks(_loop)
    for task in left:
        task.cancel()
    if left:
        _loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))


@types.coroutine
def _resumed(coroutine, waiting_on):
    """The rest of ``coroutine``, which was stepped by hand until it suspended
    on ``waiting_on``: the task running this waits for what the coroutine
    waits for, then steps it on, passing in what the task is sent or thrown."""
    sent = thrown = None
    while True:
        try:
            sent, thrown = (yield waiting_on), None
        except BaseException as error:  # cancellation is passed in too
            thrown = error
        try:
            waiting_on = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
        except StopIteration as done:
            return done.value
