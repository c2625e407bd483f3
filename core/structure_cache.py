"""CSV(.gz) files of CIFs read once: parsed in several processes, then cached on disk.

Parsing a CIF into its conventional cell costs milliseconds (a few hundred crystals/s per process),
so training on tens of thousands of crystals waited minutes for its first step, every run.
``load_entries_cached`` returns exactly what ``core.structures.load_entries`` returns, with a CSV's
rows shared among worker processes and the result kept for the next run.

The cache holds no pickle (like a checkpoint, it must load without running code): one ``.npz`` of
plain arrays read with ``allow_pickle=False`` (lattices; atomic numbers and fractional coordinates
of all sites with per-crystal offsets; ids, properties, notes and failures as JSON text), written
atomically. It records everything its content depends on (the source's path, size, mtime and
SHA-256, the options, the parsing code, pymatgen/spglib/pandas versions): a mismatch is stale and
parsed again. Only CSVs are cached; ``ICSG3D_NO_CACHE=1`` turns it off, ``ICSG3D_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from importlib import metadata
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from core import structures as st
from core.atomic import atomic_write
from core.elements import Vocabulary
from core.structures import DEFAULT_MAX_SITES, Entry, Failure

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the file layout changes (code edits are caught by the code digest)
MAX_WORKERS = 8
MIN_ROWS_PER_WORKER = 500  # a spawned worker takes ~1.5 s to start: a few hundred rows' parsing
MAX_CHUNK = 256  # rows per task: small enough to balance the workers, large enough to amortise IPC

# A parsed row between processes and in the cache: ("failure", row, id, reason, props, formula) or
# ("entry", row, id, body, props, note), body = (lattice, numbers, frac, labels, extras), or a
# Structure that arrays cannot hold exactly (then the file is not cached).
Record = tuple[Any, ...]
_ELEMENTS = {z: Element.from_Z(z) for z in range(1, 119)}


def default_cache_dir() -> Path:
    """``$ICSG3D_CACHE_DIR``, else ``~/.cache/icsg3d/structures``."""
    env = os.environ.get("ICSG3D_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "icsg3d" / "structures"


def cache_disabled() -> bool:
    """``ICSG3D_NO_CACHE`` set (to anything but 0/false/no): parse every time, write nothing."""
    return os.environ.get("ICSG3D_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no")


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The parsing code and library versions: a cache made by other code is stale."""
    h = hashlib.sha256()
    for module_file in (st.__file__, __file__):
        try:
            h.update(Path(module_file).read_bytes())
        except OSError:  # not a plain file (zipped install): FORMAT_VERSION and the versions remain
            h.update(str(module_file).encode())
    for package in ("pymatgen", "spglib", "pandas"):
        try:
            h.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package}=?;".encode())
    return h.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(path: Path, limit: int | None, vocab: Vocabulary | None, max_sites: int | None) -> dict:
    """Everything that changes the result of reading ``path`` (stored in, and checked against, the file)."""
    stat = path.stat()
    return {"version": FORMAT_VERSION, "code": _code_digest(), "path": str(path.resolve()), "name": path.name,
            "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _file_digest(path), "limit": limit,
            "max_sites": max_sites, "vocab": list(vocab.symbols) if vocab is not None else None}  # fmt: skip


def cache_file(key: dict, cache_dir: Path) -> Path:
    """One file per source and options: a changed source overwrites its own stale file."""
    slot = {k: key[k] for k in ("path", "name", "limit", "max_sites", "vocab")}
    digest = hashlib.sha256(json.dumps(slot, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"{key['name'].split('.')[0]}-{digest}.npz"


# -- parsing ---------------------------------------------------------------------------------
def _pack(s: Structure) -> tuple | Structure:
    """A structure as plain arrays, or itself when arrays would not rebuild it exactly."""
    if not s.is_ordered or any(type(sp) is not Element for sp in s.species) or not all(s.lattice.pbc):
        return s
    extras = {"site_properties": s.site_properties, "properties": s.properties}
    extras = extras if s.site_properties or s.properties else None
    try:
        if extras and json.loads(json.dumps(extras, allow_nan=False)) != extras:
            return s
    except (TypeError, ValueError):  # numpy values, NaN: not exact in JSON
        return s
    labels = [site.label for site in s]
    labels = None if labels == [site.species_string for site in s] else labels
    numbers = np.array([sp.Z for sp in s.species], dtype=np.int16)
    return np.array(s.lattice.matrix, dtype=np.float64), numbers, np.array(s.frac_coords, dtype=np.float64), labels, extras


def _unpack(body: tuple | Structure) -> Structure:
    if isinstance(body, Structure):
        return body
    lattice, numbers, frac, labels, extras = body
    extras = extras or {}
    return Structure(Lattice(lattice), [_ELEMENTS[int(z)] for z in numbers], frac, labels=labels,
                     site_properties=extras.get("site_properties") or None,
                     properties=extras.get("properties") or None)  # fmt: skip


def _parse_chunk(path: str, start: int, rows: list[dict], has_ids: bool, vocab, max_sites) -> list[Record]:  # noqa: ANN001
    """Rows ``start..`` of a CSV as records (runs in a worker process, or in this one)."""
    source = Path(path)
    out: list[Record] = []
    for i, row in enumerate(rows, start):
        item = st.csv_row_item(source, i, row, has_ids, vocab, max_sites)
        if isinstance(item, Failure):
            out.append(("failure", i, item.id, item.reason, item.props, item.formula))
        else:
            out.append(("entry", i, item.id, _pack(item.structure), item.props, item.note))
    return out


def _parse_rows(path: Path, rows: list[dict], has_ids: bool, vocab, max_sites, workers: int) -> list[Record]:  # noqa: ANN001
    """Records of all rows, in row order; in ``workers`` processes when there is enough to share."""
    workers = min(workers, max(1, len(rows) // MIN_ROWS_PER_WORKER))
    if workers > 1:
        size = max(1, min(MAX_CHUNK, math.ceil(len(rows) / (workers * 4))))
        starts = list(range(0, len(rows), size))
        try:
            # spawn, not fork: training may hold CUDA/NCCL/OpenMP threads that a fork would copy mid-lock
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                parts = pool.map(_parse_chunk, repeat(str(path)), starts, [rows[s : s + size] for s in starts],
                                 repeat(has_ids), repeat(vocab), repeat(max_sites))  # fmt: skip
                return [record for part in parts for record in part]
        except (OSError, BrokenProcessPool, NotImplementedError, ImportError) as exc:
            log.warning("%s: cannot parse in %d processes (%s: %s); parsing in this one",
                        path, workers, type(exc).__name__, exc)  # fmt: skip
    return _parse_chunk(str(path), 0, rows, has_ids, vocab, max_sites)


def _items(path: Path, records: list[Record]) -> tuple[list[Entry], list[Failure]]:
    entries: list[Entry] = []
    failures: list[Failure] = []
    for kind, row, entry_id, *rest in records:
        source = st.csv_row_source(path, row, entry_id)
        if kind == "entry":
            body, props, note = rest
            entries.append(Entry(entry_id, _unpack(body), source, props, note))
        else:
            reason, props, formula = rest
            failures.append(Failure(entry_id, source, reason, props, formula))
    return entries, failures


# -- the cache file --------------------------------------------------------------------------
def _to_npz(key: dict, records: list[Record]) -> bytes | None:
    """The records as .npz bytes; None when a structure cannot be stored exactly."""
    bodies = [r[3] for r in records if r[0] == "entry"]
    if any(isinstance(b, Structure) for b in bodies):
        return None
    meta = {"key": key,
            "entries": [[r[1], r[2], r[4], r[5], r[3][3], r[3][4]] for r in records if r[0] == "entry"],
            "failures": [list(r[1:]) for r in records if r[0] == "failure"]}  # fmt: skip
    counts = [len(b[1]) for b in bodies]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        lattices=np.array([b[0] for b in bodies], dtype=np.float64).reshape(-1, 3, 3),
        offsets=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        numbers=np.concatenate([b[1] for b in bodies] or [np.zeros(0)]).astype(np.int16),
        frac=np.concatenate([b[2] for b in bodies] or [np.zeros((0, 3))]).astype(np.float64),
    )
    return buffer.getvalue()


def _from_npz(file: Path) -> tuple[dict, list[Record]]:
    """(stored key, records) of a cache file; raises on anything malformed."""
    with np.load(file, allow_pickle=False) as z:
        if set(z.files) != {"meta", "lattices", "offsets", "numbers", "frac"}:
            raise ValueError(f"arrays {sorted(z.files)}")
        meta = json.loads(z["meta"].tobytes().decode())
        lattices, offsets, numbers, frac = z["lattices"], z["offsets"], z["numbers"], z["frac"]
    n = len(meta["entries"])
    if lattices.shape != (n, 3, 3) or offsets.shape != (n + 1,) or frac.shape != (len(numbers), 3):
        raise ValueError("array shapes do not match")
    if offsets[0] != 0 or offsets[-1] != len(numbers) or np.any(np.diff(offsets) < 1):
        raise ValueError("bad site offsets")
    if numbers.size and (numbers.min() < 1 or numbers.max() > 118):
        raise ValueError("bad atomic numbers")
    records: list[Record] = []
    for i, (row, entry_id, props, note, labels, extras) in enumerate(meta["entries"]):
        sl = slice(int(offsets[i]), int(offsets[i + 1]))
        records.append(("entry", row, entry_id, (lattices[i], numbers[sl], frac[sl], labels, extras), props, note))
    records += [("failure", *f) for f in meta["failures"]]
    records.sort(key=lambda r: r[1])
    return meta["key"], records


def _read_cache(file: Path, key: dict) -> list[Record] | None:
    """The cached records, or None (with a warning when the file is there but unusable)."""
    if not file.exists():
        return None
    try:
        stored, records = _from_npz(file)
    except Exception as exc:  # noqa: BLE001 - any damage means: parse again
        log.warning("%s: corrupt structure cache (%s: %s); parsing again", file, type(exc).__name__, exc)
        return None
    if stored != key:
        changed = sorted(k for k in key if stored.get(k) != key[k]) if isinstance(stored, dict) else ["all"]
        log.warning("%s: stale structure cache (%s changed); parsing again", file, ", ".join(changed))
        return None
    return records


def _write_cache(path: Path, file: Path, key: dict, records: list[Record]) -> None:
    payload = _to_npz(key, records)
    if payload is None:
        log.info("%s: a structure cannot be stored as plain arrays; not cached", path)
        return
    try:
        atomic_write(file, payload, force=True)
    except OSError as exc:
        log.warning("%s: cannot write the structure cache (%s); the next run parses again", file, exc)
        return
    log.info("%s: cached %d rows in %s", path, len(records), file)


def load_entries_cached(path: str | Path, limit: int | None = None, vocab: Vocabulary | None = None,
                        max_sites: int | None = DEFAULT_MAX_SITES, workers: int | None = None,
                        cache_dir: str | Path | None = None) -> tuple[list[Entry], list[Failure]]:  # fmt: skip
    """What ``load_entries`` returns, a CSV parsed in ``workers`` processes and cached (see module doc).

    ``workers`` defaults to min(cpu count, 8); 1 parses in this process."""
    path = Path(path)
    if not (st.is_csv(path) and path.is_file()):
        return st.load_entries(path, limit=limit, vocab=vocab, max_sites=max_sites)
    workers = max(1, workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS))
    use_cache = not cache_disabled()
    records = None
    if use_cache:
        key = cache_key(path, limit, vocab, max_sites)
        file = cache_file(key, Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir())
        records = _read_cache(file, key)
        if records is not None:
            log.info("%s: %d rows read from the structure cache %s", path, len(records), file)
    if records is None:
        rows, has_ids = st.read_csv_rows(path, limit)
        records = _parse_rows(path, rows, has_ids, vocab, max_sites, workers)
        if use_cache:
            _write_cache(path, file, key, records)
    entries, failures = _items(path, records)
    if failures:
        log.warning("%s: %d of %d inputs could not be read", path, len(failures), len(entries) + len(failures))
    return entries, failures
