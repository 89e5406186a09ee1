"""The CLI's tables: every value whole, whatever the width of the screen or file."""

from __future__ import annotations

import io

from rich.console import Console

from revstack._output import cell, print_table

COLUMNS = [
    "week",
    "at",
    "rows_loaded",
    "proposed",
    "auto_applied",
    "card_decisions",
    "graduated",
    "run_s",
]
ROWS = [
    {
        "week": w,
        "at": f"2026-07-{2 + 7 * w:02d}",
        "rows_loaded": 207_847 + w,
        "proposed": 4_265,
        "auto_applied": 2_177,
        "card_decisions": 579,
        "graduated": "crm_hygiene.merge_accounts, crm_hygiene.merge_contacts" if w == 0 else None,
        "run_s": 75.31234 + w,
    }
    for w in range(3)
]


def _printed(terminal: bool, width: int = 80) -> str:
    buf = io.StringIO()
    out = Console(
        file=buf, width=width, force_terminal=terminal, color_system=None, highlight=False
    )
    print_table(ROWS, COLUMNS, title="13 weeks", out=out)
    return buf.getvalue()


def test_a_file_gets_each_row_whole_on_one_line_however_wide() -> None:
    text = _printed(terminal=False)
    assert "…" not in text
    lines = text.splitlines()
    assert max(len(line) for line in lines) > 80  # drawn wider than the console, not cut
    for r in ROWS:
        line = next(line for line in lines if r["at"] in line)
        for value in (str(r["rows_loaded"]), cell(r["run_s"]), r["graduated"] or ""):
            assert value in line


def test_a_narrow_terminal_gets_each_row_as_a_list_with_nothing_cut() -> None:
    text = _printed(terminal=True, width=80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for r in ROWS:
        assert f"week {r['week']}" in text
        assert r["at"] in text and str(r["rows_loaded"]) in text
    assert "crm_hygiene.merge_accounts, crm_hygiene.merge_contacts" in text
    assert text.count("card_decisions") == len(ROWS)


def test_a_table_that_fits_is_one_table_with_its_headers_once() -> None:
    text = _printed(terminal=True, width=240)
    assert text.count("card_decisions") == 1
    assert "week 0" not in text


def test_cells_read_as_a_person_reads_them() -> None:
    assert cell(1.58061313790871) == "1.581"
    assert cell(0.99751) == "0.9975"
    assert cell(0.99974) == "0.9997"  # not "1": a share this close to 1 is the point
    assert cell(1234.6) == "1,235"
    assert cell(75.31234) == "75.31"
    assert cell(float("nan")) == "–"
    assert cell(None) == ""
    assert cell(207847) == "207847"  # ints as they are: an id must copy back into a command
    assert cell(True) == "True"
