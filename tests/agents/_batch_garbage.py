"""Child-process entry point for deal prep's collector test: build and drop a batch with
the cyclic collector paused, then print (as JSON) what the next collection finds, counted
by type name.

A fresh interpreter, because a collection cannot tell whose garbage it finds: in the
test process, what earlier tests left running (a warehouse handle's idle timer, a
dashboard's threads) can drop cycles of its own between the two collections, and those
would be blamed on the batch.
"""

from __future__ import annotations

import gc
import json
from collections import Counter

from revstack.agents._cite import Cite, Note, Statement
from revstack.agents.deal_prep._batch import Batch

CITES = [Cite("crm.activities", (("activity_id", f"X{i}"),), "occurred_at", i) for i in range(50)]
ITEMS = [Statement.of("deal", "Many.", CITES), Note("news", "No news.")]


def one_batch() -> None:
    batch = Batch()
    numbers = batch.add(ITEMS)
    assert batch.render([("T", "S", numbers)]) and batch.payloads([numbers])


def main() -> None:
    # Once before measuring: a first call's one-time set-up (a lazy import, a cache) may
    # leave cycles of its own, and they are not what a batch leaves behind.
    one_batch()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collection finds, to name it
    one_batch()
    gc.collect()
    print(json.dumps(Counter(type(o).__qualname__ for o in gc.garbage)))


if __name__ == "__main__":
    main()
