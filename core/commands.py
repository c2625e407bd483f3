"""The model commands of `icsg3d`: reconstruct, generate, interpolate, predict.

Each writes one CIF per result (named by id; atomic; refuses to overwrite without --force) and a
summary.csv with columns id, formula_in, formula_out, status, error for EVERY input or sample.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.atomic import atomic_write
from core.errors import ICSGError, OutputExistsError
from core.structures import cif_text

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ("id", "formula_in", "formula_out", "status", "error")
BATCH = 64


@dataclass
class Row:
    id: str
    formula_in: str = ""
    formula_out: str = ""
    status: str = "ok"
    error: str = ""


def load_model_set(args: argparse.Namespace):
    from core.pipeline import ModelSet

    return ModelSet.load(getattr(args, "models", None), device=getattr(args, "device", "auto"))


def _models_root(args: argparse.Namespace) -> Path:
    from core.pipeline import default_models_dir

    return Path(args.models) if getattr(args, "models", None) else default_models_dir()


def _prepare_out(out: Path, force: bool) -> None:
    summary = out / "summary.csv"
    if summary.exists() and not force:
        raise OutputExistsError(str(summary))
    out.mkdir(parents=True, exist_ok=True)


def _write_result(out: Path, row: Row, structure, symprec: float | None, force: bool) -> None:
    """Write <id>.cif for a successful row; a write failure turns the row into an error row."""
    if structure is None:
        return
    try:
        atomic_write(out / f"{row.id}.cif", cif_text(structure, symprec), force=force)
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
        writer.writerow([r.id, r.formula_in, r.formula_out, r.status, r.error])
    path = atomic_write(out / "summary.csv", buffer.getvalue(), force=True)
    ok = sum(r.status == "ok" for r in rows)
    log.info("%d of %d ok; summary: %s", ok, len(rows), path)
    return path


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _decoded_rows(ids, decoded, formulas_in=None) -> list[tuple[Row, object]]:
    rows = []
    for k, (rid, item) in enumerate(zip(ids, decoded, strict=True)):
        row = Row(rid, formula_in=formulas_in[k] if formulas_in else "")
        if item.structure is None:
            row.status, row.error = "error", item.error or "no structure"
        rows.append((row, item.structure))
    return rows


def _reconstruction_row(entry, item, out: Path, args: argparse.Namespace, matcher) -> Row:  # noqa: ANN001
    """A decoded input's row: ``composition_changed`` / ``structure_changed`` when the output is
    not the input crystal (CDVAE ``matcher``), never ``ok`` for a crystal the model got wrong."""
    formula_in = entry.structure.composition.reduced_formula
    row = Row(entry.id, formula_in, "", "ok", entry.note)
    if item.structure is None:
        row.status, row.error = "error", item.error or "no structure"
        return row
    _write_result(out, row, item.structure, args.symprec, args.force)
    if row.status != "ok":
        return row
    if item.structure.composition.reduced_composition != entry.structure.composition.reduced_composition:
        row.status = "composition_changed"
        row.error = _join(f"the model made {row.formula_out} of {formula_in}", entry.note)
    elif not matcher.fit(item.structure, entry.structure):
        row.status = "structure_changed"
        row.error = _join(f"same formula, another structure (no StructureMatcher match to {entry.id})", entry.note)
    return row


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _report_rows(rows: Sequence[Row], shown: int = 20) -> int:
    """Say on stderr what went wrong with which input; exit status 1 when no input is ok."""
    bad = [r for r in rows if r.status != "ok"]
    for r in bad[:shown]:
        print(f"icsg3d: {r.id}: {r.status}: {r.error}", file=sys.stderr)
    if len(bad) > shown:
        print(f"icsg3d: ... and {len(bad) - shown} more (see summary.csv)", file=sys.stderr)
    return 0 if any(r.status == "ok" for r in rows) else 1


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from core.structures import load_entries

    ms = load_model_set(args)
    out = Path(args.out)
    _prepare_out(out, args.force)
    # read without the model's limits: a readable crystal outside them is out_of_domain, not an error
    entries, failures = load_entries(args.structures, limit=args.limit, max_sites=None)
    rows = [Row(f.id, f.formula, status="error", error=f.reason) for f in failures]
    from core.metrics.matching import cdvae_matcher

    matcher = cdvae_matcher()
    inside = []
    for e in entries:
        problem = ms.domain_problem(e.structure)
        if problem is None:
            inside.append(e)
        else:
            rows.append(Row(e.id, e.structure.composition.reduced_formula, "", "out_of_domain",
                            _join(problem + "; no shipped model set covers it yet", e.note)))  # fmt: skip
    for chunk in tqdm(list(_chunks(inside, BATCH)), desc="reconstruct", unit="batch"):
        try:
            decoded = ms.reconstruct([e.structure for e in chunk], labels=False)
        except ICSGError as exc:
            rows += [Row(e.id, e.structure.composition.reduced_formula, "", "error", str(exc)) for e in chunk]
            continue
        rows += [_reconstruction_row(e, item, out, args, matcher) for e, item in zip(chunk, decoded, strict=True)]
    write_summary(out, rows)
    return _report_rows(rows)


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    ms = load_model_set(args)
    out = Path(args.out)
    _prepare_out(out, args.force)
    start = time.perf_counter()  # sampling included: composition-first sampling encodes its proposals
    if args.around:
        from core.structures import read_structure

        centre = ms.encode([read_structure(args.around, vocab=ms.vocab)])[0]
        z = ms.around(centre, args.n, spread=args.temperature, seed=args.seed)
    else:
        z = ms.sample(args.n, args.temperature, args.seed, prior=args.prior, group=args.prior_group)
    rows: list[Row] = []
    for first in tqdm(range(0, args.n, BATCH), desc="generate", unit="batch"):
        decoded = ms.decode(z[first : first + BATCH], args.condition, labels=False)
        ids = [f"sample-{i:05d}" for i in range(first, first + len(decoded))]
        for row, structure in _decoded_rows(ids, decoded):
            _write_result(out, row, structure, args.symprec, args.force)
            rows.append(row)
    seconds = time.perf_counter() - start
    write_summary(out, rows)
    log.info("generated %d crystals in %.1f s (%.1f per second, sampling and CIF writing included)", args.n, seconds, args.n / seconds)
    return 0


def _structure_arg(text: str, vocab):
    """A CIF/POSCAR path or a gallery id."""
    from core.structures import read_structure

    if Path(text).exists():
        return read_structure(text, vocab=vocab)
    from core.gallery import load_gallery
    from core.structures import check_structure

    try:
        structure = load_gallery(text)
    except KeyError as exc:
        raise ICSGError(f"{text}: neither a file nor a gallery id ({exc.args[0]})") from None
    check_structure(structure, f"gallery:{text}", vocab=vocab)  # elements the model knows
    return structure


def cmd_interpolate(args: argparse.Namespace) -> int:
    ms = load_model_set(args)
    out = Path(args.out)
    _prepare_out(out, args.force)
    a, b = _structure_arg(args.a, ms.vocab), _structure_arg(args.b, ms.vocab)
    za, zb = ms.encode([a, b])
    path = ms.interpolate(za, zb, args.steps, args.method)
    decoded = ms.decode(path, labels=False)
    ids = [f"step-{i:03d}" for i in range(len(path))]
    rows = []
    for row, structure in _decoded_rows(ids, decoded):
        _write_result(out, row, structure, args.symprec, args.force)
        rows.append(row)
    buffer = io.BytesIO()
    np.save(buffer, path)
    atomic_write(out / "latent_path.npy", buffer.getvalue(), force=args.force)
    write_summary(out, rows)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core.structures import load_entries

    ms = load_model_set(args)
    if ms.cgcnn is None:
        raise ICSGError(f"{ms.source}: this model set has no CGCNN (cgcnn/)")
    entries, failures = load_entries(args.structures, limit=args.limit)
    results = [{"id": f.id, "status": "error", "error": f.reason} for f in failures]
    for chunk in _chunks(entries, 256):
        for e, props in zip(chunk, ms.predict([x.structure for x in chunk]), strict=True):
            results.append({"id": e.id, "formula": e.structure.composition.reduced_formula, "status": "ok", **props})
    text = json.dumps(results, indent=2)
    if args.json:
        atomic_write(args.json, text + "\n", force=True)
    else:
        print(text)
    return 0


def prior_arg(p: argparse.ArgumentParser, what: str = "") -> None:
    """--prior, as `generate` and `evaluate generation` take it (choices: core.pipeline.PRIORS)."""
    p.add_argument("--prior", choices=["auto", "composition", "composition-unfiltered", "fitted", "normal"],
                   default="auto",
                   help=f"{what}composition: new compositions on learned prototypes, encoded (the default when "
                        "the model set has one); fitted: the latent mixture over the training crystals; "
                        "normal: N(0, T^2 I)")  # fmt: skip
    p.add_argument("--prior-group", default=None, metavar="NAME",
                   help="sample only the prior's components of this training family (e.g. perov_5)")  # fmt: skip


def _training_entries(args: argparse.Namespace) -> tuple[list, list[str]]:
    """The inputs' crystals (only the split's 'train' ids with --split), and a group name each."""
    from core.train.data import apply_split_file, load_sources

    if getattr(args, "groups", None) is not None and len(args.groups) != len(args.structures):
        raise ICSGError(f"--groups needs one name per input ({len(args.structures)}), got {len(args.groups)}")
    entries, groups = [], []
    for i, source in enumerate(args.structures):
        read, failures = load_sources([source], None)
        if args.split is not None:
            try:
                read, _held_out = apply_split_file(read, args.split)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ICSGError(f"{args.split}: not a split.json with 'train' and 'val' lists ({exc})") from None
        for f in failures:
            log.warning("skipped %s: %s", f.source, f.reason)
        entries += read
        groups += [args.groups[i] if getattr(args, "groups", None) else "all"] * len(read)
    return entries, groups


def cmd_index_known(args: argparse.Namespace) -> int:
    """Write the model set's index of its training crystals (known.json.gz, core/known.py)."""
    from core.known import KnownCrystals
    from core.pipeline import KNOWN_FILE

    entries, _ = _training_entries(args)
    if not entries:
        raise ICSGError("no crystals to index")
    out = args.out or (_models_root(args) / KNOWN_FILE)
    KnownCrystals([e.id for e in entries], [e.structure for e in entries]).save(out)
    log.info("indexed %d training crystals -> %s (%.0f kB)", len(entries), out, Path(out).stat().st_size / 1e3)
    return 0


def _fit_composition_prior(args: argparse.Namespace) -> int:
    from core.composition_prior import FILENAME, CompositionPrior

    entries, groups = _training_entries(args)
    if args.groups:  # only the families named first (e.g. perov_5 when mp20_cubic rides along)
        entries = [e for e, g in zip(entries, groups, strict=True) if g == args.groups[0]]
    try:
        prior = CompositionPrior.fit([e.structure for e in entries], explore=args.explore)
    except ValueError as exc:
        raise ICSGError(str(exc)) from None
    out = args.out or (_models_root(args) / "vae" / FILENAME)
    prior.save(out)
    log.info("composition prior from %d crystals (%d prototypes) -> %s", prior.n_fit, len(prior.prototypes), out)
    return 0


def cmd_fit_prior(args: argparse.Namespace) -> int:
    """Fit what generation samples: the latent mixture over the encoded training crystals
    (core/latent_prior.py), or the composition prior (core/composition_prior.py)."""
    from core.latent_prior import FILENAME, LatentPrior

    if args.kind == "composition":
        return _fit_composition_prior(args)
    ms = load_model_set(args)
    entries, groups = _training_entries(args)
    posts = [ms.encode_posterior([e.structure for e in entries[first : first + BATCH]])
             for first in tqdm(range(0, len(entries), BATCH), desc="encode", unit="batch")]  # fmt: skip
    if not posts:
        raise ICSGError("no crystals to fit the prior on")
    mu, sigma = (np.concatenate(parts) for parts in zip(*posts, strict=True))
    if args.kind == "aggregate":
        prior = LatentPrior.aggregate(mu, sigma, groups=groups if args.groups else None)
    else:
        if args.groups:
            raise ICSGError("--groups applies to the aggregate prior only (--kind aggregate)")
        prior = LatentPrior.fit(mu, components=args.components, seed=args.seed, covariance=args.covariance)
    root = Path(ms.source)
    out = args.out or (root / "vae" / FILENAME)
    prior.save(out)
    log.info("%s latent prior of %d components from %d crystals -> %s", args.kind, len(prior.weights), len(entries), out)
    return 0


def _common(p: argparse.ArgumentParser, out: bool = True) -> None:
    p.add_argument("--models", type=Path, help="model set folder (default: the shipped one in resources/models)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    if out:
        p.add_argument("--out", required=True, type=Path, help="output folder (CIFs + summary.csv)")
        p.add_argument("--force", action="store_true", help="overwrite existing outputs")
        p.add_argument("--symprec", type=float, default=None, help="symmetrise CIFs with this tolerance (Å); default P1")


def add_model_commands(sub) -> None:
    """Register reconstruct / generate / interpolate / predict on the `icsg3d` sub-parsers."""
    from core.structures import STRUCTURES_HELP

    p = sub.add_parser("reconstruct", help="encode (mean z) -> decode -> segment -> CIF per crystal")
    p.add_argument("structures", help=STRUCTURES_HELP)
    p.add_argument("--limit", type=int)
    _common(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("generate", help="sample crystals from the prior (or around a crystal)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="prior std (or spread with --around)")
    p.add_argument("--around", help="sample around this CIF's latent vector")
    p.add_argument("--condition", type=int, default=None, help="property decile 0-9 (default: unknown)")
    prior_arg(p)
    _common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("fit-prior", help="fit the latent mixture that generation samples from")
    p.add_argument("structures", nargs="+", help="the VAE's training crystals (" + STRUCTURES_HELP + ")")
    p.add_argument("--split", type=Path, help="split.json of the training run: keep only its 'train' ids")
    p.add_argument("--kind", choices=["aggregate", "gmm", "composition"], default="aggregate",
                   help="aggregate: q(z) = one Gaussian per crystal (default); gmm: an EM-fitted mixture; "
                        "composition: site-by-site element distributions on learned prototypes")  # fmt: skip
    p.add_argument("--explore", type=float, default=0.0,
                   help="composition: share of multi-site roles drawn element by element (new multisets)")
    p.add_argument("--components", type=int, default=16, help="gmm: Gaussian components (default 16)")
    p.add_argument("--covariance", choices=["full", "diag"], default="full", help="gmm: component covariances")
    p.add_argument("--groups", nargs="+", metavar="NAME",
                   help="aggregate: a family name per input (e.g. perov_5 perov_5 mp20_cubic) for --prior-group")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="output file (default: MODELS/vae/latent_prior.safetensors)")
    _common(p, out=False)
    p.set_defaults(func=cmd_fit_prior)

    p = sub.add_parser("index-known", help="index the training crystals (novelty: new vs known: <id>)")
    p.add_argument("structures", nargs="+", help="the model set's training crystals (" + STRUCTURES_HELP + ")")
    p.add_argument("--split", type=Path, help="split.json of the training run: keep only its 'train' ids")
    p.add_argument("--out", type=Path, help="output file (default: MODELS/known.json.gz)")
    _common(p, out=False)
    p.set_defaults(func=cmd_index_known)

    p = sub.add_parser("interpolate", help="decode a latent path between two crystals")
    p.add_argument("a", help="CIF/POSCAR file or gallery id")
    p.add_argument("b", help="CIF/POSCAR file or gallery id")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    _common(p)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("predict", help="CGCNN properties per crystal")
    p.add_argument("structures", help=STRUCTURES_HELP)
    p.add_argument("--json", help="write the predictions here instead of stdout")
    p.add_argument("--limit", type=int)
    _common(p, out=False)
    p.set_defaults(func=cmd_predict)
