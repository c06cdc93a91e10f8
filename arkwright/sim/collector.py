"""How the garbage collector runs while the core works through a large, long-lived heap.

A run keeps millions of objects alive for its whole length (a trace's jobs, the queue's
keys), which every full collection would walk, and makes and drops small containers at
every event (keys, decisions, a pass's state), which reference counting frees at once
but which, at the default threshold of 700 allocations, still set the collector going
every few events. So: what exists when the run starts is frozen out of the collector's
sight, and the youngest generation is collected a hundredth as often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 70_000  # allocations between collections of the youngest generation


@contextmanager
def long_lived_heap() -> Iterator[None]:
    # Only the young generations are collected first: a full collection would walk every
    # job of a big trace (0.8 s for a million) to free what little old garbage there is,
    # which the freeze then merely keeps until the run ends.
    gc.collect(1)
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
