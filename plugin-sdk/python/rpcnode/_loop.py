"""Runs a plugin's coroutines to completion inside the call that started them.

asyncio's own loop needs a self-pipe (a socketpair), which a plugin does not
have. A plugin has nothing to wait on but time, so this loop waits for its
next timer by sleeping, and an await that nothing could ever complete is an
error rather than a hang.
"""

import asyncio
import time


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
    try:
        return _loop.run_until_complete(awaitable)
    finally:
        left = asyncio.all_tasks(_loop)
        for task in left:
            task.cancel()
        if left:
            _loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
