"""Reading a person's text file (a sequencer report, a news feed) as UTF-8, or saying
where it is not: a spreadsheet saved as Latin-1 is the usual cause."""

from __future__ import annotations

from pathlib import Path

from revstack.data.errors import InputError, Problem

__all__ = ["read_utf8"]


def read_utf8(path: Path) -> str:
    """The file's text (a UTF-8 byte-order mark dropped); ``InputError`` naming the
    first line that is not UTF-8, or a file that is missing or cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            "rejected, nothing was loaded",
            [Problem(str(path), "not UTF-8 text (re-export or save it as UTF-8)", line=line)],
        ) from exc
