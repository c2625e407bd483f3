"""Crystal loading for training: cold parse (CIF -> conventional cell, in --workers processes)
and warm load from the structure cache (core.structure_cache), in crystals per second.

    python benchmarks/parse.py [--data ../shared/data/perov_5/train.csv.gz] [--limit 3000]
        [--workers N] [--repeat 3]
    python benchmarks/parse.py --smoke     # seconds, on a CSV made from the shipped gallery (CI)

The cold figure includes reading the CSV, parsing every row and writing the cache; the warm
figure is the best of --repeat loads of that cache. A temporary cache folder is used and removed,
so the user's cache is neither read nor touched. Wall time is inflated when other processes
share the CPU (the 1-minute load average is reported, and the cold load's CPU seconds summed
over all its processes). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core import structure_cache  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "perov_5" / "train.csv.gz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV(.gz) with a cif column")
    parser.add_argument("--limit", type=int, default=3000, help="read at most N rows (0 = all)")
    parser.add_argument("--workers", type=int, default=None, help="parsing processes (default: min(CPUs, 8))")
    parser.add_argument("--repeat", type=int, default=3, help="warm loads; the best is reported")
    parser.add_argument("--smoke", action="store_true", help="seconds-long run on the shipped gallery (CI)")
    return parser.parse_args(argv)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def gallery_csv(folder: Path) -> Path:
    """A CSV(.gz) of the shipped gallery's CIFs (the smoke run needs no data set)."""
    path = folder / "gallery.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif"])
        for cif in sorted((REPO / "resources" / "gallery").glob("*.cif")):
            w.writerow([cif.stem, cif.read_text()])
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    limit = args.limit or None
    workers = args.workers or min(os.cpu_count() or 1, structure_cache.MAX_WORKERS)
    with tempfile.TemporaryDirectory(prefix="icsg3d-parse-bench-") as tmp:
        data = gallery_csv(Path(tmp)) if args.smoke else args.data
        cache = Path(tmp) / "cache"
        t0, c0 = time.perf_counter(), cpu_seconds()
        entries, failures = structure_cache.load_entries_cached(data, limit, workers=workers, cache_dir=cache)
        cold, cold_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        warm_runs = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            warm = structure_cache.load_entries_cached(data, limit, workers=workers, cache_dir=cache)
            warm_runs.append(time.perf_counter() - t0)
        if len(warm[0]) != len(entries) or len(warm[1]) != len(failures):
            print(json.dumps({"error": "the cached load differs from the cold one"}))
            return 2
        cache_bytes = sum(f.stat().st_size for f in cache.glob("*.npz"))
    n = len(entries) + len(failures)
    used = min(workers, max(1, n // structure_cache.MIN_ROWS_PER_WORKER))
    result = {
        "smoke": args.smoke,
        "data": str(data) if not args.smoke else "resources/gallery",
        "n": n,
        "failed": len(failures),
        "workers": workers,
        "workers_used": used,  # fewer when there are too few rows to share (MIN_ROWS_PER_WORKER)
        "cold_per_s": round(n / cold, 1),
        "cold_seconds": round(cold, 3),
        "cold_cpu_seconds": round(cold_cpu, 3),  # all processes: the work, whatever the contention
        "warm_per_s": round(n / min(warm_runs), 1),
        "warm_seconds": round(min(warm_runs), 4),
        "cache_mb": round(cache_bytes / 1e6, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
