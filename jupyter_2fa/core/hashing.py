"""Slow password hashes (Argon2id: recovery codes, and a single server's own password) in threads of their own.

Argon2id takes a whole core and tens of MiB for tens of milliseconds per hash, on purpose. At most half the CPUs
hash at once, so a flood of guesses waits here instead of taking every core from the event loop, and only these
threads' malloc arenas keep the working area after a hash (glibc keeps a freed block that size in the arena that
used it): with one arena per worker thread, four workers kept 77 MiB where one hashing thread keeps 20.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_THREADS = ThreadPoolExecutor(max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="jupyter-2fa-argon2")


def hashing(work: Callable[[], T]) -> Future[T]:
    """``work`` started in the hashing threads; an event loop awaits ``asyncio.wrap_future`` of it."""
    return _THREADS.submit(work)


def hashed(work: Callable[[], T]) -> T:
    """``work``'s result, computed in the hashing threads (for callers already off the event loop)."""
    return hashing(work).result()
