"""Progress reporting without a UI dependency.

Long library work accepts ``progress: Progress | None`` and calls it as
``progress(step, done, total)``; the CLI turns the calls into a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "report"]

Progress = Callable[[str, int, int], None]


def report(progress: Progress | None, step: str, done: int, total: int) -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(step, done, total)
