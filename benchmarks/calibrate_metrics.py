"""Calibrate the CDVAE-protocol metrics on real crystals ("real data scored as if generated").

    python benchmarks/calibrate_metrics.py --data ../shared/data/perov_5/val.csv.gz [--limit N]
        [--cov-limit M] [--n-jobs 2] [--train ../shared/data/perov_5/train.csv.gz --train-limit K]
    python benchmarks/calibrate_metrics.py --smoke     # seconds, on the shipped gallery (CI)

Prints one JSON object: validity of every parsed crystal (perov_5 target: struct 100 %, comp ~98.6 %),
COV / W1 of a random subset against itself (must be 100 % / 0) and of one half against the other
(the real-data floor), uniqueness (and novelty against train when given), and timings. CIFs are
parsed as stored (what CDVAE scores); `--conventional` goes through core.structures.load_entries.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.geometry import min_pair_distance  # noqa: E402
from core.metrics import (  # noqa: E402
    FingerprintCache,
    coverage_details,
    fingerprints,
    reference_row,
    uniqueness,
    w1_density,
    w1_nelem,
)
from core.metrics.coverage import _featurizers  # noqa: E402
from core.metrics.matching import formula_index, novelty  # noqa: E402


def load(path: str, limit: int | None, conventional: bool) -> tuple[list, int]:
    """(structures, n_failed) from a CSV(.gz) with a `cif` column."""
    if conventional:
        from core.structures import load_entries

        entries, failures = load_entries(path, limit=limit, max_sites=None)
        return [e.structure for e in entries], len(failures)
    import pandas as pd
    from pymatgen.core import Structure

    structures, failed = [], 0
    for cif in pd.read_csv(path, nrows=limit)["cif"]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structures.append(Structure.from_str(cif, fmt="cif"))
        except Exception:
            failed += 1
    return structures, failed


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def min_distance(structures: list) -> float:
    """Shortest distance between two sites over all the crystals, Å."""
    return min((min_pair_distance(s) for s in structures), default=np.inf)


def split_block(gen: list, ref: list, cache: FingerprintCache) -> dict:
    """COV and W1 of one set of real crystals scored as generated against another."""
    cov = coverage_details(gen, ref, cache=cache)
    return {
        "n_gen": len(gen),
        "n_ref": len(ref),
        **{k: cov[k] for k in ("cov_r", "cov_p", "amsd_r", "amsd_p", "amcd_r", "amcd_p")},
        "w1_density": w1_density(gen, ref),
        "w1_nelem": w1_nelem(gen, ref),
    }


def coverage_block(subset: list, rest: list, n_jobs: int, cache: FingerprintCache) -> dict:
    """Fingerprint speed (serial vs pool), COV/W1 self, split-half and subset vs the rest."""
    out: dict = {"n": len(subset)}
    _featurizers()  # matminer import + CrystalNN set-up (~3 s) is not per-structure cost
    n_serial = min(40, len(subset))
    _, t_serial = timed(fingerprints, subset[:n_serial], n_jobs=1, cache=FingerprintCache())
    out["fp_serial_per_s"] = n_serial / t_serial
    fps, t_pool = timed(fingerprints, subset, n_jobs=n_jobs, cache=cache)
    out.update(fp_n_jobs=n_jobs, fp_pool_per_s=len(subset) / t_pool, fp_failed=sum(f is None for f in fps))
    self_cov, t_cached = timed(coverage_details, subset, subset, cache=cache)
    out["self"] = {
        "cov_r": self_cov["cov_r"],
        "cov_p": self_cov["cov_p"],
        "w1_density": w1_density(subset, subset),
        "w1_nelem": w1_nelem(subset, subset),
        "cached_call_s": t_cached,
    }
    half = len(subset) // 2
    out["half_vs_half"] = split_block(subset[:half], subset[half:], cache)
    if rest:
        _, t_rest = timed(fingerprints, rest, n_jobs=n_jobs, cache=cache)
        out["subset_vs_rest"] = split_block(subset, rest, cache)
        out["rest_fp_pool_per_s"] = len(rest) / t_rest
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run on the shipped gallery (CI: the benchmark still runs)")
    ap.add_argument("--limit", type=int, default=None, help="rows to read (default all)")
    ap.add_argument("--cov-limit", type=int, default=400, help="random subset for COV/W1/uniqueness")
    ap.add_argument(
        "--ref-limit", type=int, default=0, help="also score the subset against N other crystals (-1: all)"
    )
    ap.add_argument("--fp-cache", default=None, help="fingerprint cache .npz to read and update")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", default=None, help="training CSV for novelty (optional)")
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument(
        "--conventional", action="store_true", help="load via core.structures (conventional cells)"
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.data = args.data or str(ROOT / "resources" / "gallery")
        args.conventional, args.cov_limit, args.n_jobs = True, min(args.cov_limit, 6), 1
        args.train = args.train or args.data
    elif args.data is None:
        ap.error("--data is required (or --smoke)")
    logging.basicConfig(level=logging.WARNING)

    t_start = time.perf_counter()
    (structures, n_failed), t_load = timed(load, args.data, args.limit, args.conventional)
    row, t_val = timed(reference_row, structures)
    result: dict = {
        "smoke": args.smoke,
        "data": args.data,
        "n_rows_parsed": len(structures),
        "n_parse_failed": n_failed,
        "reference_row": row,
        "min_interatomic_distance": min_distance(structures),
        "timing": {"load_s": t_load, "validity_per_s": len(structures) / t_val},
    }
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(structures))
    subset = [structures[i] for i in perm[: args.cov_limit]]
    rest_idx = perm[args.cov_limit :] if args.ref_limit < 0 else perm[args.cov_limit :][: args.ref_limit]
    rest = [structures[i] for i in rest_idx]
    cache = FingerprintCache.load(args.fp_cache) if args.fp_cache else FingerprintCache()
    result["fp_cache_loaded"] = len(cache)
    result["coverage"] = coverage_block(subset, rest, args.n_jobs, cache)
    if args.fp_cache:
        cache.save(args.fp_cache)
    uniq, t_uniq = timed(uniqueness, subset)
    result["uniqueness_subset"] = uniq
    result["timing"]["uniqueness_s"] = t_uniq
    if args.train:
        train, _ = load(args.train, args.train_limit, args.conventional)
        index = formula_index(train)
        nov, t_nov = timed(novelty, subset, index)
        result.update(novelty_subset_vs_train=nov, n_train=len(train))
        result["timing"]["novelty_s"] = t_nov
    result["timing"]["total_s"] = time.perf_counter() - t_start
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
