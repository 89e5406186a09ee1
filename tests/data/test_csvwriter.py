"""Every CSV revstack writes keeps spreadsheets from running its cells as formulas (OWASP's
CSV injection rule), while numbers stay numbers."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from revstack.data.csvwriter import csv_text, neutralise, write_csv
from tests.conftest import ROOT

PAYLOAD = "=cmd|' /C calc'!A0"
DANGEROUS = [PAYLOAD, "+1 206 555 0111", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]
HARMLESS = ["Acme", "a=b", "1-2", "", " =spaced"]


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_text_cells_that_would_start_a_formula_get_a_quote_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    n = len(DANGEROUS) + len(HARMLESS)
    df = pl.DataFrame(
        {
            "name": DANGEROUS + HARMLESS,
            "amount": [-1054.5] + [1.0] * (n - 1),
            "count": [-3] + [0] * (n - 1),
            "day": [dt.date(2026, 1, 2)] * n,
            "=sum": ["x"] * n,
        }
    )
    out = tmp_path / "out.csv"
    write_csv(df, out)
    header, *rows = _cells(out)
    assert header == ["name", "amount", "count", "day", "'=sum"]
    names = [r[0] for r in rows]
    assert names[: len(DANGEROUS)] == ["'" + v for v in DANGEROUS]
    assert names[len(DANGEROUS) :] == HARMLESS
    assert rows[0][1:4] == ["-1054.5", "-3", "2026-01-02"]  # a negative number is a number
    assert csv_text(df) == out.read_bytes().decode("utf-8")
    assert neutralise("-5") == "'-5" and neutralise("5-") == "5-"


def test_the_writer_leaves_no_half_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("kept\n")
    nested = pl.DataFrame({"a": [[1, 2]]})  # CSV cannot hold a list: the write fails
    with pytest.raises(pl.exceptions.PolarsError):
        write_csv(nested, out)
    assert out.read_text() == "kept\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.slow
def test_dedupe_out_neutralises_ids_from_the_input(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        f'id,company\n"{PAYLOAD}",Acme Corp\n-17,Acme Corporation\n@a3,Globex\na4,Initech\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "revstack", "dedupe", str(src), "--id", "id", "--name"]
        + ["company", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    header, *rows = _cells(out)
    assert header == ["record_id", "cluster_id", "confidence"]
    ids = {r[0] for r in rows}
    assert ids == {"'" + PAYLOAD, "'-17", "'@a3", "a4"}
    assert all(not r[1].startswith(("=", "+", "-", "@")) for r in rows)
    assert all(float(r[2]) >= 0 for r in rows)  # confidence stays a number
