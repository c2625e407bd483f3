"""`icsg3d evaluate reconstruction|generation|properties`: run the model set, score like CDVAE.

Every input that cannot be read, gridded or reconstructed counts as a miss and is listed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

from pymatgen.core import Structure
from tqdm import tqdm

from core.errors import ICSGError, StructureError
from core.known import KnownCrystals
from core.metrics import evaluate_generation, evaluate_properties, evaluate_reconstruction
from core.structures import Entry, Failure, check_structure

log = logging.getLogger(__name__)

BATCH = 64  # crystals per decode call

RATE_KEYS = ("match_rate", "match_rate_ungated", "composition_accuracy", "struct_validity")


def trained_ids(ms) -> set[str]:
    """Material ids the model set trained on: its known-crystal index (known.json.gz), else the
    'train' list of split.json beside it; empty when it ships neither (then nothing is dropped,
    and the evaluation JSON says so)."""
    if ms.known is not None:
        return set(ms.known.ids)
    split = Path(ms.source) / "split.json"
    if split.is_file():
        return {str(i) for i in json.loads(split.read_text(encoding="utf-8")).get("train", [])}
    return set()


def _held_out(ms, entries: list[Entry]) -> tuple[list[Entry], int]:
    """(entries the model set did not train on, how many were dropped), by material id."""
    seen = trained_ids(ms)
    kept = [e for e in entries if e.id not in seen]
    if len(kept) < len(entries):
        log.warning("left out %d crystals the models trained on", len(entries) - len(kept))
    return kept, len(entries) - len(kept)


def evaluate_reconstruction_run(ms, entries: list[Entry], read_failures: list[Failure]):
    failures = list(read_failures)
    preds: list[Structure | None] = []
    targets: list[Structure] = []
    for start in tqdm(range(0, len(entries), BATCH), desc="reconstruct", unit="batch"):
        chunk = entries[start : start + BATCH]
        usable = []
        for e in chunk:
            try:
                check_structure(e.structure, e.source, vocab=ms.vocab)
            except StructureError as exc:
                failures.append(Failure(e.id, e.source, exc.reason))
                preds.append(None)
                targets.append(e.structure)
            else:
                usable.append(e)
        if not usable:
            continue
        for e, item in zip(usable, ms.reconstruct([e.structure for e in usable], labels=False), strict=True):
            preds.append(item.structure)
            targets.append(e.structure)
            if item.structure is None:
                failures.append(Failure(e.id, e.source, item.error or "no structure"))
    # Unreadable inputs are misses too: pad with None predictions against a placeholder target.
    n_unreadable = len(read_failures)
    metrics = evaluate_reconstruction(preds, targets) if targets else {"n": 0}
    if n_unreadable and targets:
        # one denominator for every rate: all inputs, an unreadable one a miss (averages over
        # matches, rmse and lattice_mae, keep theirs)
        for key in RATE_KEYS:
            if metrics.get(key) is not None:
                metrics[key] = metrics[key] * len(targets) / (len(targets) + n_unreadable)
        metrics["n"] = len(targets) + n_unreadable
    metrics["n_unreadable"] = n_unreadable
    metrics["z"] = "mean (deterministic encode)"
    return metrics, failures


def _generated(ms, args: argparse.Namespace) -> tuple[list[Structure | None], list[Failure], float]:
    """Samples of the prior decoded to crystals, or (--calibrate FILE) real crystals scored as if
    generated: the floor the metrics give real data on this reference."""
    from core.structures import load_entries

    start = time.perf_counter()
    if getattr(args, "calibrate", None):
        entries, failures = load_entries(args.calibrate, limit=args.n)
        return [e.structure for e in entries], list(failures), time.perf_counter() - start
    prior, group = getattr(args, "prior", "auto"), getattr(args, "prior_group", None)
    z = ms.sample(args.n, temperature=1.0, seed=args.seed, prior=prior, group=group)
    gen: list[Structure | None] = []
    failures: list[Failure] = []
    for first in tqdm(range(0, len(z), BATCH), desc="generate", unit="batch"):
        for k, item in enumerate(ms.decode(z[first : first + BATCH], predict=False, labels=False)):
            gen.append(item.structure)
            if item.structure is None:
                failures.append(Failure(f"sample-{first + k:05d}", "prior", item.error or "no structure"))
    return gen, failures, time.perf_counter() - start


def evaluate_generation_run(ms, args: argparse.Namespace, ref: list[Entry]):
    prior, group = getattr(args, "prior", "auto"), getattr(args, "prior_group", None)
    gen, failures, seconds = _generated(ms, args)
    # novelty against --train instead of the model set's index; rediscovery of --reference, else --data
    known = _index(args.train) if args.train else ms.known
    rediscover = _index(args.reference) if getattr(args, "reference", None) else KnownCrystals.from_entries(ref)
    metrics = evaluate_generation(gen, [e.structure for e in ref], n_jobs=2, seed=args.seed, known=known,
                                  rediscover=rediscover)  # fmt: skip
    metrics["prior"] = (f"real crystals from {args.calibrate} (calibration)" if getattr(args, "calibrate", None)
                        else _prior_name(ms, prior, group))  # fmt: skip
    metrics["generation_seconds"] = seconds
    metrics["valid_per_s"] = (metrics.get("n_valid") or 0) / seconds if seconds else None
    return metrics, failures


def _prior_name(ms, prior: str, group: str | None) -> str:
    if prior == "auto":
        prior = ("composition" if ms.composition_prior is not None and group is None
                 else "fitted" if ms.prior is not None else "normal")  # fmt: skip
    name = {"composition": "composition-first (core/composition_prior.py)",
            "composition-unfiltered": "composition-first without the known/repeat filters",
            "fitted": "fitted latent mixture", "normal": "N(0, I)"}[prior]  # fmt: skip
    return name + (f", group {group}" if group is not None else "")


def _index(path: str) -> KnownCrystals:
    """The crystals of an input (file, folder or CSV) as a matcher index."""
    from core.structures import load_entries

    return KnownCrystals.from_entries(load_entries(path)[0])


def evaluate_properties_run(ms, entries: list[Entry], read_failures: list[Failure]):
    if ms.cgcnn is None:
        raise ICSGError(f"{ms.source}: this model set has no CGCNN (cgcnn/)")
    names = ms.property_names
    preds = ms.predict([e.structure for e in entries])
    pred = {n: [p[n] for p in preds] for n in names}
    true = {n: [e.props.get(n, math.nan) for e in entries] for n in names}
    metrics = evaluate_properties(pred, true)
    return metrics, list(read_failures)


def run_model_evaluation(args: argparse.Namespace, entries: list[Entry], read_failures: list[Failure]):
    from core.pipeline import ModelSet

    ms = ModelSet.load(getattr(args, "models", None), device=getattr(args, "device", "auto"))
    entries, n_dropped = _held_out(ms, entries)
    if args.kind == "reconstruction":
        metrics, failures = evaluate_reconstruction_run(ms, entries, read_failures)
    elif args.kind == "generation":
        metrics, failures = evaluate_generation_run(ms, args, entries)
    elif args.kind == "properties":
        metrics, failures = evaluate_properties_run(ms, entries, read_failures)
    else:
        raise ICSGError(f"unknown evaluation {args.kind!r}")
    metrics["n_trained_on_left_out"] = n_dropped
    return metrics, failures
