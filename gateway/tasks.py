"""Background-task helpers shared by every part that owns a task."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Future | None) -> None:
    """Cancel a background task and wait until its clean-up has run (``None`` is a no-op)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
