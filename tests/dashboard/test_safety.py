"""What the dashboard hands out and shows of the data cannot act: CSV downloads hold no
live formula, and values on pages are text, never Markdown or HTML."""

from __future__ import annotations

import csv
import io

import polars as pl

from revstack.dashboard._state import csv_text

PAYLOAD = "=cmd|' /C calc'!A0"


def test_csv_downloads_neutralise_formula_text_and_keep_numbers() -> None:
    df = pl.DataFrame(
        {
            "reason": [PAYLOAD, "+1 206 555 0111", "plain"],
            "evidence": [["@x"], ["a"], []],  # nested: JSON text starts with [
            "amount": [-1054.5, 3.0, 0.0],
        }
    )
    header, *rows = list(csv.reader(io.StringIO(csv_text(df))))
    assert header == ["reason", "evidence", "amount"]
    assert [r[0] for r in rows] == ["'" + PAYLOAD, "'+1 206 555 0111", "plain"]
    assert rows[0][1] == '["@x"]' and rows[0][2] == "-1054.5"
