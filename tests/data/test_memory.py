"""``revstack.data.memory``: freed memory handed back to the system."""

from __future__ import annotations

import sys

import pytest

from revstack.data.memory import _malloc_trim, give_back


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or _malloc_trim() is None, reason="glibc only"
)
def test_freed_strings_leave_the_process_once_given_back() -> None:
    """300 MB of strings of the size of a briefing's pages (tens of KB: below glibc's
    mmap threshold, so from its heap) freed between survivors (blocks of 600 bytes, also
    malloc's, as any real heap has): none of them is resident once given back."""
    give_back()
    before = _rss_mb()
    texts, kept = [], []
    for i in range(6000):
        texts.append("x" * 50_000 + str(i))
        kept.append("k" * 600 + str(i))
    grown = _rss_mb() - before
    assert grown > 250
    del texts
    give_back()
    after = _rss_mb()
    # What freeing left resident (most of it, in a fresh process: glibc keeps the pages
    # below the survivors; a process whose glibc already maps blocks this size on their
    # own returns them at once) is gone once given back.
    assert after - before < 60, (before, grown, after)
    assert len(kept) == 6000
