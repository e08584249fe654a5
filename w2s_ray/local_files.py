"""A user's own dataset file read into a table; a malformed file is one line that names the
file and, where the format has lines, the first line to fix (polars' own errors span many
lines and name none)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from w2s_ray.errors import UserError

KINDS = {".jsonl": "JSON Lines", ".csv": "CSV", ".parquet": "Parquet"}


def read_frame(path: Path) -> Any:
    """The whole file as a polars DataFrame."""
    import polars as pl

    readers = {".jsonl": pl.read_ndjson, ".csv": pl.read_csv, ".parquet": pl.read_parquet}
    try:
        return readers[path.suffix](path)
    except Exception as exc:  # polars has many error kinds; each here is the file's fault
        raise UserError(describe_bad_file(path, exc)) from None


def read_columns(path: Path) -> set[str]:
    """The file's column names, read without loading the rows."""
    import polars as pl

    try:
        if path.suffix == ".parquet":
            return set(pl.read_parquet_schema(path))
        if path.suffix == ".csv":
            return set(pl.read_csv(path, n_rows=1).columns)
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
        return set(pl.read_ndjson(io.StringIO(first)).columns) if first.strip() else set()
    except Exception as exc:
        raise UserError(describe_bad_file(path, exc)) from None


def describe_bad_file(path: Path, exc: Exception) -> str:
    """One line: the file, the first bad line when one can be found, and what to do."""
    kind = KINDS.get(path.suffix, path.suffix)
    if isinstance(exc, OSError) and not isinstance(exc, UnicodeError):
        return f"dataset file '{path}': cannot read it ({exc.strerror or exc}) — check the path"
    found = first_bad_line(path)
    if found is not None:
        number, problem = found
        return f"dataset file '{path}': line {number} {problem} — fix or delete that line"
    text = str(exc).strip()
    cause = text.splitlines()[0] if text else type(exc).__name__
    return (
        f"dataset file '{path}' is not a readable {kind} file ({cause}) — check its format, "
        "or write it again (e.g. with polars or pandas)"
    )


def first_bad_line(path: Path) -> tuple[int, str] | None:
    """(1-based line number, what is wrong with it) of the first malformed line of a JSON
    Lines or CSV file; None when every line looks well formed (or for Parquet)."""
    if path.suffix not in (".jsonl", ".csv"):
        return None
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return number, "is not UTF-8 text"
        return _bad_json_line(path) if path.suffix == ".jsonl" else _bad_csv_line(path)
    except OSError:
        return None


def _bad_json_line(path: Path) -> tuple[int, str] | None:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as err:
                return number, f"is not valid JSON ({err.msg} at column {err.colno})"
            if not isinstance(value, dict):
                return number, f"is a JSON {type(value).__name__}, not an object {{...}}"
    return None


def _bad_csv_line(path: Path) -> tuple[int, str] | None:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return None
            for row in reader:
                if row and len(row) != len(header):
                    return reader.line_num, (
                        f"has {len(row)} fields where the header has {len(header)} (quote "
                        "texts that hold commas)"
                    )
        except csv.Error as err:
            return reader.line_num, f"is malformed CSV ({err})"
    return None
