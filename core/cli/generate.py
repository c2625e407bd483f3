"""`icsg3d reconstruct | generate | interpolate`: decode crystals and write one CIF per result and
a summary.csv (core/cli/outputs.py)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from tqdm import tqdm

from core.cli.common import add_model_options, add_prior_options, load_model_set
from core.cli.outputs import (
    Row,
    chunks,
    join,
    prepare_out,
    report_rows,
    segmentation_check,
    write_decoded,
    write_result,
    write_summary,
)
from core.errors import ICSGError
from core.export import export_npy
from core.structures import STRUCTURES_HELP

log = logging.getLogger(__name__)


def _reconstruction_row(entry, item, out: Path, args: argparse.Namespace, matcher) -> Row:  # noqa: ANN001
    """A decoded input's row: ``composition_changed`` / ``structure_changed`` when the output is
    not the input crystal (CDVAE ``matcher``, its reconstruction test), never ``ok`` for a crystal
    the model got wrong."""
    from core.metrics.matching import reconstructs

    formula_in = entry.structure.composition.reduced_formula
    row = Row(entry.id, formula_in, "", "ok", entry.note, segmentation_check(item))
    if item.structure is None:
        row.status, row.error = "error", item.error or "no structure"
        return row
    write_result(out, row, item.structure, args.symprec, args.force)
    if row.status != "ok":
        return row
    if item.structure.composition.reduced_composition != entry.structure.composition.reduced_composition:
        row.status = "composition_changed"
        row.error = join(f"the model made {row.formula_out} of {formula_in}", entry.note)
    elif not reconstructs(item.structure, entry.structure, matcher):
        row.status = "structure_changed"
        row.error = join(f"same formula, another structure (no StructureMatcher match to {entry.id})", entry.note)
    return row


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from core.evaluation import BATCH
    from core.metrics.matching import cdvae_matcher
    from core.model_sets import domain_advice
    from core.structures import load_entries

    ms = load_model_set(args)
    out = Path(args.out)
    prepare_out(out, args.force)
    # read without the model's limits: a readable crystal outside them is out_of_domain, not an error
    entries, failures = load_entries(args.structures, limit=args.limit, max_sites=None)
    rows = [Row(f.id, f.formula, status="error", error=f.reason) for f in failures]
    matcher = cdvae_matcher()
    inside = []
    for e in entries:
        problem = ms.domain_problem(e.structure)
        if problem is None:
            inside.append(e)
        else:
            advice = domain_advice(e.structure, loaded=ms.source)
            rows.append(Row(e.id, e.structure.composition.reduced_formula, "", "out_of_domain",
                            join(f"{problem}; {advice}", e.note)))  # fmt: skip
    for chunk in tqdm(list(chunks(inside, BATCH)), desc="reconstruct", unit="batch"):
        try:
            decoded = ms.reconstruct([e.structure for e in chunk], labels=False, check=True)
        except ICSGError as exc:
            rows += [Row(e.id, e.structure.composition.reduced_formula, "", "error", str(exc)) for e in chunk]
            continue
        rows += [_reconstruction_row(e, item, out, args, matcher) for e, item in zip(chunk, decoded, strict=True)]
    write_summary(out, rows)
    return report_rows(rows)


def cmd_generate(args: argparse.Namespace) -> int:
    from core.evaluation import BATCH

    ms = load_model_set(args)
    out = Path(args.out)
    prepare_out(out, args.force)
    start = time.perf_counter()  # sampling included: composition-first sampling encodes its proposals
    if args.around:
        from core.structures import read_structure

        centre = ms.encode([read_structure(args.around, vocab=ms.vocab)])[0]
        z, proposals = ms.around(centre, args.n, spread=args.temperature, seed=args.seed), None
    else:
        z, proposals = ms.sample_with_proposals(args.n, args.temperature, args.seed, args.prior, args.prior_group)
    rows: list[Row] = []
    for first in tqdm(range(0, args.n, BATCH), desc="generate", unit="batch"):
        decoded = ms.decode(z[first : first + BATCH], args.condition, labels=False, check=args.unet_check)
        ids = [f"sample-{i:05d}" for i in range(first, first + len(decoded))]
        rows += write_decoded(out, ids, decoded, args.symprec, args.force)
    if proposals is not None:
        _note_proposals(rows, proposals)
    seconds = time.perf_counter() - start
    write_summary(out, rows)
    log.info("generated %d crystals in %.1f s (%.1f per second, sampling and CIF writing included)", args.n, seconds, args.n / seconds)
    return 0


def _note_proposals(rows: list[Row], proposals: list) -> None:
    """A sample of a prior that proposes crystals (composition, substitution) names its proposal:
    formula_in is the proposed formula, the notes say where it came from and whether the model
    made another crystal of it (the sample is still a sample: its status stays)."""
    for row, proposal in zip(rows, proposals, strict=True):
        row.formula_in = proposal.composition.reduced_formula
        notes = [proposal.properties.get("proposal", f"proposed {row.formula_in}")]
        if row.formula_out and row.formula_out != row.formula_in:
            notes.append(f"the model made {row.formula_out} of it")
        row.error = join(*notes, row.error)


def _structure_arg(text: str, vocab):  # noqa: ANN001, ANN202 (a Vocabulary -> a pymatgen Structure)
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
    prepare_out(out, args.force)
    a, b = _structure_arg(args.a, ms.vocab), _structure_arg(args.b, ms.vocab)
    za, zb = ms.encode([a, b])
    path = ms.interpolate(za, zb, args.steps, args.method)
    decoded = ms.decode(path, labels=False, check=True)
    rows = write_decoded(out, [f"step-{i:03d}" for i in range(len(path))], decoded, args.symprec, args.force)
    export_npy(out / "latent_path.npy", path, force=args.force, dtype=None)
    write_summary(out, rows)
    return 0


def add_reconstruct(sub) -> None:  # noqa: ANN001 (argparse's sub-parser collection)
    p = sub.add_parser("reconstruct", help="encode (mean z) -> decode -> segment -> CIF per crystal")
    p.add_argument("structures", help=STRUCTURES_HELP)
    p.add_argument("--limit", type=int)
    add_model_options(p)
    p.set_defaults(func=cmd_reconstruct)


def add_generate(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("generate", help="sample crystals from the prior (or around a crystal)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None,
                   help="prior std (or spread with --around); default: the model set's own (1.0 unless its "
                        "meta.json chose another)")  # fmt: skip
    p.add_argument("--around", help="sample around this CIF's latent vector")
    p.add_argument("--condition", type=int, default=None, help="property decile 0-9 (default: unknown)")
    p.add_argument("--unet-check", action="store_true",
                   help="also run the U-Net on every sample: summary.csv says where it types a site otherwise "
                   "(about half the speed)")  # fmt: skip
    add_prior_options(p)
    add_model_options(p)
    p.set_defaults(func=cmd_generate)


def add_interpolate(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("interpolate", help="decode a latent path between two crystals")
    p.add_argument("a", help="CIF/POSCAR file or gallery id")
    p.add_argument("b", help="CIF/POSCAR file or gallery id")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    add_model_options(p)
    p.set_defaults(func=cmd_interpolate)
