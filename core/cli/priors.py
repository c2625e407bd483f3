"""`icsg3d fit-prior | index-known`: what a model set samples from, and its index of the crystals
it trained on (novelty)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.cli.common import add_model_options, load_model_set, models_root
from core.errors import ICSGError
from core.structures import STRUCTURES_HELP

log = logging.getLogger(__name__)


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
                raise ICSGError(
                    f"{args.split}: not a split.json with 'train' and 'val' lists ({exc})"
                ) from None
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
    out = args.out or (models_root(args) / KNOWN_FILE)
    KnownCrystals([e.id for e in entries], [e.structure for e in entries]).save(out)
    log.info(
        "indexed %d training crystals -> %s (%.0f kB)", len(entries), out, Path(out).stat().st_size / 1e3
    )
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
    out = args.out or (models_root(args) / "vae" / FILENAME)
    prior.save(out)
    log.info(
        "composition prior from %d crystals (%d prototypes) -> %s", prior.n_fit, len(prior.prototypes), out
    )
    return 0


def cmd_fit_prior(args: argparse.Namespace) -> int:
    """Fit what generation samples: the latent mixture over the encoded training crystals
    (core/latent_prior.py), or the composition prior (core/composition_prior.py)."""
    from core.evaluation import BATCH
    from core.latent_prior import FILENAME, LatentPrior

    if args.kind == "composition":
        return _fit_composition_prior(args)
    ms = load_model_set(args)
    entries, groups = _training_entries(args)
    # the training crystals, in the frames the VAE trained on: no frame search (it would cost ~100x)
    posts = [ms.encode_posterior(ms.training_frames([e.structure for e in entries[first : first + BATCH]]),
                                 frame_search=False)
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
    out = args.out or (Path(ms.source) / "vae" / FILENAME)
    prior.save(out)
    log.info(
        "%s latent prior of %d components from %d crystals -> %s",
        args.kind,
        len(prior.weights),
        len(entries),
        out,
    )
    return 0


def add_fit_prior(sub) -> None:  # noqa: ANN001 (argparse's sub-parser collection)
    p = sub.add_parser("fit-prior", help="fit the latent mixture that generation samples from")
    p.add_argument("structures", nargs="+", help="the VAE's training crystals (" + STRUCTURES_HELP + ")")
    p.add_argument("--split", type=Path, help="split.json of the training run: keep only its 'train' ids")
    p.add_argument("--kind", choices=["aggregate", "gmm", "composition"], default="aggregate",
                   help="aggregate: q(z) = one Gaussian per crystal (default); gmm: an EM-fitted mixture; "
                        "composition: site-by-site element distributions on learned prototypes")  # fmt: skip
    p.add_argument(
        "--explore",
        type=float,
        default=0.0,
        help="composition: share of multi-site roles drawn element by element (new multisets)",
    )
    p.add_argument("--components", type=int, default=16, help="gmm: Gaussian components (default 16)")
    p.add_argument(
        "--covariance", choices=["full", "diag"], default="full", help="gmm: component covariances"
    )
    p.add_argument("--groups", nargs="+", metavar="NAME",
                   help="aggregate: a family name per input (e.g. perov_5 perov_5 mp20_cubic) for --prior-group")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="output file (default: MODELS/vae/latent_prior.safetensors)")
    add_model_options(p, out=False)
    p.set_defaults(func=cmd_fit_prior)


def add_index_known(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("index-known", help="index the training crystals (novelty: new vs known: <id>)")
    p.add_argument(
        "structures", nargs="+", help="the model set's training crystals (" + STRUCTURES_HELP + ")"
    )
    p.add_argument("--split", type=Path, help="split.json of the training run: keep only its 'train' ids")
    p.add_argument("--out", type=Path, help="output file (default: MODELS/known.json.gz)")
    add_model_options(p, out=False)
    p.set_defaults(func=cmd_index_known)
