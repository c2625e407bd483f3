"""Evaluation of the method with the CDVAE protocol: read data, run the method, score with
core.metrics. The runners take plain arguments (a model set, entries, sample counts, a seed) and
return the DESIGN.md key set of their kind plus a per-input list of failures, so that nothing is
skipped silently; `icsg3d evaluate` (core/cli/evaluate.py) writes them as JSON and a report.

- roundtrip: true density + labels -> segmentation -> structure (no model set);
- reconstruction, generation, properties, segmentation: the model set, on crystals it did not
  train on (segmentation: the U-Net, or another segmenter, on true or decoded grids).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.core import Structure
from tqdm import tqdm

from core.elements import Vocabulary
from core.errors import ICSGError, SegmentationError, StructureError
from core.known import KnownCrystals
from core.metrics import (
    evaluate_generation,
    evaluate_properties,
    evaluate_reconstruction,
    lattice_mae,
    match_rate_rmse,
)
from core.metrics.coverage import cov_cutoffs
from core.segment import grid_to_structure
from core.structures import Entry, Failure, check_structure
from core.voxel import VoxelConfig, Voxeliser, representable

log = logging.getLogger(__name__)

BATCH = 64  # crystals per encode/decode call in batch runs: bounds the (B, C, d, d, d) tensors
MODEL_KINDS = ("reconstruction", "generation", "properties", "segmentation")
RATE_KEYS = ("match_rate", "match_rate_ungated", "composition_accuracy", "struct_validity")


@dataclass
class RoundtripResult:
    """Figures of a roundtrip run and what failed where."""

    metrics: dict
    failures: list[Failure] = field(default_factory=list)
    predictions: list[Structure | None] = field(default_factory=list)


def roundtrip(
    entries: list[Entry],
    read_failures: list[Failure] | None = None,
    cfg: VoxelConfig | None = None,
    batch_size: int = 128,
) -> RoundtripResult:
    """True density + labels -> segmentation -> Structure, scored against the input crystal.

    Inputs that could not be read or gridded count as misses (match_rate = matched / all inputs).
    """
    cfg = cfg or VoxelConfig()
    usable, failures = representable(entries, cfg)
    failures = list(read_failures or []) + failures
    vocab = Vocabulary.from_structures(e.structure for e in usable) if usable else Vocabulary.default()
    voxeliser = Voxeliser(cfg, vocab)
    preds: list[Structure | None] = []
    for start in range(0, len(usable), batch_size):
        chunk = usable[start : start + batch_size]
        density, labels, abc = voxeliser.batch([e.structure for e in chunk])
        for k, entry in enumerate(chunk):
            try:
                angles = entry.structure.lattice.angles  # the grid is in fractional coordinates of this cell
                preds.append(grid_to_structure(density[k], abc[k], vocab, labels=labels[k], angles=angles))
            except SegmentationError as exc:
                failures.append(Failure(entry.id, entry.source, f"segmentation failed: {exc}"))
                preds.append(None)
    targets = [e.structure for e in usable]
    # No validity gate: the roundtrip measures the representation, not the chemistry of the data.
    scored = match_rate_rmse(preds, targets, require_valid=False)
    n_total = len(entries) + len(read_failures or [])  # unreadable/ungriddable inputs are misses
    metrics = {
        "n": n_total,
        "match_rate": scored["n_matched"] / n_total if n_total else None,
        "rmse": scored["rmse"],
        "lattice_mae": lattice_mae(preds, targets),
        "n_matched": scored["n_matched"],
        "n_failed": len(failures),
    }
    return RoundtripResult(metrics=metrics, failures=failures, predictions=preds)


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


def _gridable(ms, entries: list[Entry]) -> tuple[list[Entry], list[tuple[Entry, Failure]]]:
    """(the entries the model set can take: its elements, its grid; (entry, why not) of the others)."""
    usable, unusable = [], []
    for e in entries:
        try:
            check_structure(e.structure, e.source, vocab=ms.vocab)
        except StructureError as exc:
            unusable.append((e, Failure(e.id, e.source, exc.reason)))
            continue
        problem = ms.domain_problem(e.structure)
        if problem:
            unusable.append((e, Failure(e.id, e.source, f"out of domain: {problem}")))
        else:
            usable.append(e)
    return usable, unusable


def evaluate_reconstruction_run(ms, entries: list[Entry], read_failures: list[Failure]):
    failures = list(read_failures)
    preds: list[Structure | None] = []
    targets: list[Structure] = []
    for start in tqdm(range(0, len(entries), BATCH), desc="reconstruct", unit="batch"):
        usable, unusable = _gridable(ms, entries[start : start + BATCH])
        for e, failure in unusable:  # a miss against its true crystal
            failures.append(failure)
            preds.append(None)
            targets.append(e.structure)
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


def _generated(ms, n: int, seed: int, prior: str, group: str | None, calibrate: str | Path | None,
               temperature: float | None = None) -> tuple[list[Structure | None], list[Failure], float]:  # fmt: skip
    """``n`` samples of the prior decoded to crystals, or (``calibrate``) up to ``n`` real crystals
    of that file scored as if generated: the floor the metrics give real data on this reference."""
    from core.structures import load_entries

    start = time.perf_counter()
    if calibrate:
        entries, failures = load_entries(calibrate, limit=n)
        return [e.structure for e in entries], list(failures), time.perf_counter() - start
    z = ms.sample(n, temperature=temperature, seed=seed, prior=prior, group=group)
    gen: list[Structure | None] = []
    failures: list[Failure] = []
    for first in tqdm(range(0, len(z), BATCH), desc="generate", unit="batch"):
        for k, item in enumerate(ms.decode(z[first : first + BATCH], predict=False, labels=False)):
            gen.append(item.structure)
            if item.structure is None:
                failures.append(Failure(f"sample-{first + k:05d}", "prior", item.error or "no structure"))
    return gen, failures, time.perf_counter() - start


def evaluate_generation_run(ms, ref: list[Entry], n: int = 1000, seed: int = 0, prior: str = "auto",
                            group: str | None = None, train: str | Path | None = None,
                            reference: str | Path | None = None, calibrate: str | Path | None = None,
                            temperature: float | None = None, novelty: bool = True):  # fmt: skip
    """Generation figures of ``n`` samples (``prior``, restricted to ``group``; ``temperature`` None:
    the set's own) against ``ref``.

    Novelty is judged against the crystals of ``train`` (default: the model set's index of its
    training crystals); rediscovery against ``reference`` (default: ``ref``). ``novelty`` False
    skips both (quick sweeps of a setting: the keys are None, never figures of a card)."""
    gen, failures, seconds = _generated(ms, n, seed, prior, group, calibrate, temperature)
    known = (_index(train) if train else ms.known) if novelty else None
    rediscover = (_index(reference) if reference else KnownCrystals.from_entries(ref)) if novelty else None
    struct_cutoff, comp_cutoff = cov_cutoffs(ms.dataset)
    metrics = evaluate_generation(gen, [e.structure for e in ref], n_jobs=2, seed=seed, known=known,
                                  rediscover=rediscover, novelty=novelty, struct_cutoff=struct_cutoff,
                                  comp_cutoff=comp_cutoff)  # fmt: skip
    metrics["cov_cutoffs"] = {"struct": struct_cutoff, "comp": comp_cutoff}
    metrics["temperature"] = ms.temperature if temperature is None else temperature
    metrics["prior"] = (f"real crystals from {calibrate} (calibration)" if calibrate
                        else _prior_name(ms, prior, group))  # fmt: skip
    metrics["generation_seconds"] = seconds
    metrics["valid_per_s"] = (metrics.get("n_valid") or 0) / seconds if seconds else None
    return metrics, failures


def _prior_name(ms, prior: str, group: str | None) -> str:
    from core.sampling import auto_prior

    if prior == "auto":
        prior = auto_prior(ms, group)
    name = {"composition": "composition-first (core/composition_prior.py)",
            "composition-unfiltered": "composition-first without the known/repeat filters",
            "substitution": "ionic substitutions of training crystals (core/substitution.py)",
            "fitted": "fitted latent mixture", "normal": "N(0, I)"}[prior]  # fmt: skip
    name += f", group {group}" if group is not None else ""
    if getattr(ms, "max_energy", None) is not None and getattr(ms, "relax", None):
        name += f", relaxed decodes at or below {ms.max_energy} eV/atom"
    return name


def _index(path: str | Path) -> KnownCrystals:
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


def evaluate_segmentation_run(ms, entries: list[Entry], read_failures: list[Failure],
                              source: str = "true", segmenter: str = "unet"):  # fmt: skip
    """core.segmentation.evaluate_segmentation on the crystals the model set can grid; the others
    (and unreadable inputs) are listed as failures and left out of the rates."""
    from core.segmentation import evaluate_segmentation

    usable, unusable = _gridable(ms, entries)
    failures = list(read_failures) + [failure for _, failure in unusable]
    conds = [
        ms.condition_of(e.props.get(ms.prop_name)) if ms.prop_name else ms.condition_of(None) for e in usable
    ]
    metrics = evaluate_segmentation(ms, [e.structure for e in usable], source, segmenter, conds, batch=BATCH)
    metrics["n_unusable"] = len(failures)
    return metrics, failures


def evaluate_model_set(kind: str, ms, entries: list[Entry], read_failures: list[Failure],
                       source: str = "true", segmenter: str | None = None, **generation) -> tuple[dict, list[Failure]]:  # fmt: skip
    """Score the model set ``ms`` on the ``entries`` it did not train on (by material id).

    ``kind`` is one of MODEL_KINDS; ``source`` and ``segmenter`` (default: the U-Net) choose what
    segmentation scores; for reconstruction and generation ``segmenter`` replaces the set's own
    decoding choice (``ModelSet.segmenter``), so a figure of another choice can be reproduced;
    ``generation`` holds evaluate_generation_run's keywords (n, seed, prior, group, train,
    reference, calibrate, temperature, novelty)."""
    entries, n_dropped = _held_out(ms, entries)
    if segmenter is not None and kind != "segmentation":
        ms.segmenter = segmenter
    if kind == "segmentation":
        metrics, failures = evaluate_segmentation_run(ms, entries, read_failures, source, segmenter or "unet")
    elif kind == "reconstruction":
        metrics, failures = evaluate_reconstruction_run(ms, entries, read_failures)
    elif kind == "generation":
        metrics, failures = evaluate_generation_run(ms, entries, **generation)
    elif kind == "properties":
        metrics, failures = evaluate_properties_run(ms, entries, read_failures)
    else:
        raise ICSGError(f"unknown evaluation {kind!r}")
    metrics["n_trained_on_left_out"] = n_dropped
    if kind != "segmentation":
        metrics["decode_segmenter"] = getattr(ms, "segmenter", None)
    return metrics, failures
