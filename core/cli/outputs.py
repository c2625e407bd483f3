"""The result folder of the model commands: one CIF per result (named by id; atomic; never over an
existing file without --force) and a summary.csv row for EVERY input or sample."""

from __future__ import annotations

import csv
import io
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.atomic import atomic_write
from core.errors import OutputExistsError
from core.export import export_cif

log = logging.getLogger(__name__)

# the contract's five columns, then what the U-Net says about the decoded crystal (empty: agrees)
SUMMARY_COLUMNS = ("id", "formula_in", "formula_out", "status", "error", "segmentation_check")


@dataclass
class Row:
    id: str
    formula_in: str = ""
    formula_out: str = ""
    status: str = "ok"
    error: str = ""
    segmentation_check: str = ""


def segmentation_check(item) -> str:  # noqa: ANN001 (core.pipeline.Decoded)
    """Where the U-Net types a decoded crystal's sites differently: "U-Net reads site 3 (Ti) as Zr"."""
    return "; ".join(f"U-Net reads site {i + 1} ({ours}) as {theirs}"
                     for i, ours, theirs in getattr(item, "disagreements", []) or [])  # fmt: skip


def prepare_out(out: Path, force: bool) -> None:
    summary = out / "summary.csv"
    if summary.exists() and not force:
        raise OutputExistsError(str(summary))
    out.mkdir(parents=True, exist_ok=True)


def write_result(out: Path, row: Row, structure, symprec: float | None, force: bool) -> None:  # noqa: ANN001
    """Write <id>.cif for a successful row; a write failure turns the row into an error row."""
    if structure is None:
        return
    try:
        export_cif(out / f"{row.id}.cif", structure, symprec, force=force)
        row.formula_out = structure.composition.reduced_formula
    except OutputExistsError:
        raise
    except Exception as exc:  # e.g. symmetrisation failure on a noisy structure: record it
        row.status, row.error = "error", f"could not write CIF: {exc}"


def write_summary(out: Path, rows: Sequence[Row]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SUMMARY_COLUMNS)
    for r in rows:
        writer.writerow([r.id, r.formula_in, r.formula_out, r.status, r.error, r.segmentation_check])
    path = atomic_write(out / "summary.csv", buffer.getvalue(), force=True)
    ok = sum(r.status == "ok" for r in rows)
    log.info("%d of %d ok; summary: %s", ok, len(rows), path)
    return path


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _decoded_rows(ids: Sequence[str], decoded: Sequence) -> list[tuple[Row, object]]:
    """(row, structure or None) per decoded item; an item without a structure is an error row."""
    rows = []
    for rid, item in zip(ids, decoded, strict=True):
        row = Row(rid, segmentation_check=segmentation_check(item))
        if item.structure is None:
            row.status, row.error = "error", item.error or "no structure"
        rows.append((row, item.structure))
    return rows


def write_decoded(out: Path, ids: Sequence[str], decoded: Sequence, symprec: float | None, force: bool) -> list[Row]:
    """A CIF per decoded structure and the rows of all of them."""
    rows = []
    for row, structure in _decoded_rows(ids, decoded):
        write_result(out, row, structure, symprec, force)
        rows.append(row)
    return rows


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def report_rows(rows: Sequence[Row], shown: int = 20) -> int:
    """Say on stderr what went wrong with which input; exit status 1 when no input is ok."""
    bad = [r for r in rows if r.status != "ok"]
    for r in bad[:shown]:
        print(f"icsg3d: {r.id}: {r.status}: {r.error}", file=sys.stderr)
    if len(bad) > shown:
        print(f"icsg3d: ... and {len(bad) - shown} more (see summary.csv)", file=sys.stderr)
    return 0 if any(r.status == "ok" for r in rows) else 1
