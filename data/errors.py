"""One error tree for revstack.

Every error a person can cause (bad input, a broken contract, a warehouse that is
too new) is a ``RevstackError``; the CLI prints its message on one line and exits
with its ``exit_code``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "RevstackError",
    "WarehouseError",
    "SchemaVersionError",
    "WarehouseBusyError",
    "InputError",
    "Problem",
    "ContractError",
]


class RevstackError(Exception):
    """Root of every error revstack raises on purpose."""

    exit_code = 1


class WarehouseError(RevstackError):
    """The warehouse file cannot be used as asked."""


class SchemaVersionError(WarehouseError):
    """The warehouse was written by a newer revstack than this one."""


class WarehouseBusyError(WarehouseError):
    """Another process held the write lock for longer than we were willing to wait."""

    exit_code = 75  # EX_TEMPFAIL: try again later


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.column:
            where += f" [{self.column}]"
        return f"{where}: {self.message}"


class InputError(RevstackError):
    """Input was rejected; ``problems`` lists every reason, located."""

    exit_code = 2

    def __init__(self, summary: str, problems: list[Problem] | None = None) -> None:
        self.problems = list(problems or [])
        self.summary = summary
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.problems:
            return self.summary
        first = str(self.problems[0])
        more = len(self.problems) - 1
        tail = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        return f"{self.summary}: {first}{tail}"


class ContractError(RevstackError):
    """A contract or definitions file is invalid; names file, key path and problem."""

    exit_code = 2

    def __init__(self, file: str, key_path: str, problem: str) -> None:
        self.file = file
        self.key_path = key_path
        self.problem = problem
        super().__init__(f"{file}: {key_path}: {problem}")
