"""Composition-first sampling: new element combinations on learned prototypes, then the VAE.

A latent prior fitted to the encoded training crystals (``core.latent_prior``) hands back the
training crystals: the decoder has learned them well, and samples land on them. Generation is
meant to find crystals the model never saw. This sampler proposes them explicitly:

1. **Prototypes and roles.** Each training crystal's sites are snapped to the half-integer grid
   (perov_5 atoms sit near 0 or 1/2; off-centre displacements are removed) and grouped into
   roles by coordination number in that ideal cell (perovskite: A = 12, B = 6, X = 2). The
   prototype is the set of (role, multiplicity); crystals that do not snap cleanly are skipped.
2. **Learned chemistry.** Per prototype and role: the distribution of the role's element
   multiset (e.g. X3 in {O3, O2N, O2F, ...}) and each role's element marginal. A sample draws
   every role independently from these; with probability ``explore`` a multi-site role's elements
   are drawn one by one from its marginal instead, which proposes multisets never seen (O2S ->
   OS2, N2F, ...).
3. **Volume.** The cube root of the cell volume is a sum of per-(role, element) lengths fitted by
   least squares on the training crystals (a perovskite's a is close to additive in its ions:
   a ~ 2 (r_B + r_X)); per-element atomic volumes cover elements a role never had.
4. **Structure from the model.** ``ModelSet.sample(prior="composition")`` encodes the proposed
   ideal crystals with the VAE and returns their latent means; decoding gives the crystal the model
   makes of that composition (its lattice head, its atom positions and refinement).

``sample(exclude_known=True, unique=True)`` (the default) skips proposals whose composition on
its prototype is in the training set, and never proposes one twice in a call: a user asking for
new crystals gets new ones. Both are switchable so the model card can report the sampler without
them. Stored as JSON (``vae/composition_prior.json``): nothing executes on load.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from core.atomic import atomic_write
from core.errors import CheckpointError

log = logging.getLogger(__name__)

FILENAME = "composition_prior.json"
FORMAT = "icsg3d-composition-prior/1"
SNAP_TOL = 0.15  # fractional distance to the half grid beyond which a crystal is not on it
CN_TOL = 1.05  # neighbours within 5 % of the nearest-neighbour distance are one shell
MIN_PROTO_SHARE = 0.2  # rarer "prototypes" are distorted crystals snapped wrongly: not sampled
MAX_ENUMERATED_SITES = 8  # distorted training crystals: role assignments tried for the known set
MIN_COUNT = 3  # an element (or multiset) seen fewer times in a role is a mis-snapped crystal's


def _snap(frac: np.ndarray) -> tuple[np.ndarray, float]:
    """Shift the crystal so that its atoms sit nearest the half grid (each atom is tried at the
    origin: files and conventional cells put the origin anywhere), then snap; (snapped, worst
    fractional offset)."""
    best, best_off = frac, np.inf
    for shift in -frac:
        moved = (frac + shift) % 1.0
        snapped = np.round(moved * 2.0) / 2.0 % 1.0
        off = float(np.abs((moved - snapped + 0.5) % 1.0 - 0.5).max())
        if off < best_off:
            best, best_off = snapped, off
    return best, best_off


def ideal_roles(structure: Structure) -> tuple[np.ndarray, list[int]] | None:
    """Half-grid fractional coordinates (N, 3) and coordination number per site, or None when the
    crystal's atoms are not near 0 / 1/2 (or two snap onto one point)."""
    snapped, off = _snap(np.asarray(structure.frac_coords) % 1.0)
    if off > SNAP_TOL or len({tuple(p) for p in snapped}) < len(snapped):
        return None
    ideal = Structure(structure.lattice, structure.species, snapped)
    dist = ideal.distance_matrix.copy()
    np.fill_diagonal(dist, np.inf)
    # the distance matrix holds the nearest image only: count shells through neighbour lists
    cns = []
    for i in range(len(ideal)):
        nearest = float(dist[i].min()) if len(ideal) > 1 else min(ideal.lattice.abc)
        neighbours = ideal.get_neighbors(ideal[i], nearest * CN_TOL + 1e-6)
        cns.append(len(neighbours))
    return snapped, cns


def _prototype_key(cns: Sequence[int]) -> str:
    counts = Counter(cns)
    return "-".join(f"CN{cn}x{counts[cn]}" for cn in sorted(counts, reverse=True))


@dataclass
class Prototype:
    """One ideal arrangement: unit-volume lattice, half-grid sites and their roles (CNs)."""

    key: str
    lattice: np.ndarray  # (3, 3) rows, scaled to volume 1
    frac: np.ndarray  # (N, 3)
    roles: list[int]  # coordination number of each site
    weight: float = 0.0
    multisets: dict[int, Counter] = field(default_factory=dict)  # role -> Counter(tuple of symbols)
    marginals: dict[int, Counter] = field(default_factory=dict)  # role -> Counter(symbol)
    # training crystals to substitute into, by the multisets of their multi-site roles: the VAE
    # never saw translations or rotations, so proposals keep the data's origin and arrangement
    templates: dict[str, list[dict]] = field(default_factory=dict)

    def role_sites(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(self.roles):
            out[r].append(i)
        return dict(out)


MAX_TEMPLATES = 24  # training crystals kept per multi-site signature (ideal and distorted, as drawn)


def signature(by_role: dict[int, Sequence[str]]) -> str:
    """The multi-site roles' element multisets (e.g. "2:NOO"): what a template must share."""
    return "|".join(f"{r}:{''.join(sorted(by_role[r]))}" for r in sorted(by_role, reverse=True) if len(by_role[r]) > 1)


def composition_key(proto_key: str, by_role: dict[int, Sequence[str]]) -> str:
    """A crystal's identity on its prototype: the sorted element multiset of every role."""
    parts = [f"{role}:{''.join(sorted(by_role[role]))}" for role in sorted(by_role, reverse=True)]
    return proto_key + "|" + "|".join(parts)


def _template(structure: Structure, roles: Sequence[int], distorted: bool) -> dict:
    return {"lattice": (np.asarray(structure.lattice.matrix) / structure.volume ** (1 / 3)).round(6).tolist(),
            "frac": np.round(structure.frac_coords, 5).tolist(), "roles": [int(r) for r in roles],
            "species": [site.specie.symbol for site in structure], "distorted": bool(distorted)}  # fmt: skip


def _distinct_geometries(pool: list[dict]) -> list[dict]:
    """One template per geometry (roles and positions to 0.1 of the cell: what the matcher tells
    apart), weighted by how many training crystals have it; the MAX_TEMPLATES most common."""
    groups: dict[bytes, list[dict]] = {}
    for t in pool:
        roles = np.asarray(t["roles"])
        anchor = int(np.argmax(roles))  # the origin put on the most coordinated site: origins differ
        frac = (np.asarray(t["frac"]) - np.asarray(t["frac"])[anchor]) % 1.0
        frac = np.where(frac > 0.95, frac - 1.0, frac)  # 0.999 and 0.001 are one position
        order = np.lexsort((frac[:, 2], frac[:, 1], frac[:, 0], t["roles"]))
        key = np.concatenate([np.asarray(t["roles"])[order, None], np.round(frac[order] * 10) % 10], axis=1)
        groups.setdefault(key.astype(np.int16).tobytes(), []).append(t)
    ranked = sorted(groups.values(), key=len, reverse=True)[:MAX_TEMPLATES]
    return [{**members[0], "weight": len(members)} for members in ranked]


def _allowed_role_orders(structure: Structure, proto: Prototype) -> list[tuple[int, ...]]:
    """Every assignment of the crystal's sites to the prototype's roles (a role per site) that its
    elements allow: each role only takes elements seen in it. Empty for another site count."""
    symbols = [site.specie.symbol for site in structure]
    if len(symbols) != len(proto.roles) or len(symbols) > MAX_ENUMERATED_SITES:
        return []
    return [order for order in sorted(set(itertools.permutations(proto.roles)))
            if all(sym in proto.marginals.get(role, ()) for sym, role in zip(symbols, order, strict=True))]  # fmt: skip


def _distorted_roles(structure: Structure, proto: Prototype) -> list[int] | None:
    """Roles of a distorted crystal's sites on ``proto``: among the assignments its elements allow,
    the one where single-site roles of lower coordination sit nearer the multi-site role
    (perovskite: B, CN 6, nearer the anions than A, CN 12); None if no assignment fits."""
    orders = _allowed_role_orders(structure, proto)
    if not orders:
        return None
    multi = {r for r in proto.roles if proto.roles.count(r) > 1}
    dist = np.array(structure.distance_matrix, dtype=float)

    def score(order: tuple[int, ...]) -> int:
        others = [j for j, r in enumerate(order) if r in multi]
        near = {role: float(dist[i, others].min()) if others else 0.0
                for i, role in enumerate(order) if role not in multi}  # fmt: skip
        ranked = sorted(near, key=near.get)
        return sum(1 for a, b in itertools.combinations(ranked, 2) if a < b)  # nearer <-> lower CN

    return list(max(orders, key=score))  # the first of the best, as the orders are sorted


def _roles_to_elements(structure: Structure, roles: Sequence[int]) -> dict[int, list[str]]:
    """The elements of each role, from a role per site."""
    by_role: dict[int, list[str]] = defaultdict(list)
    for site, role in zip(structure, roles, strict=True):
        by_role[role].append(site.specie.symbol)
    return by_role


def _role_lengths(samples: list[tuple[dict[int, list[str]], float]]) -> dict[str, float]:
    """"role:element" -> Å: least squares of V^(1/3) on (role, element) counts."""
    columns = sorted({f"{r}:{e}" for by_role, _ in samples for r, els in by_role.items() for e in els})
    index = {c: i for i, c in enumerate(columns)}
    design = np.zeros((len(samples), len(columns)))
    for row, (by_role, _) in enumerate(samples):
        for r, els in by_role.items():
            for e in els:
                design[row, index[f"{r}:{e}"]] += 1
    target = np.cbrt([v for _, v in samples])
    weights, *_ = np.linalg.lstsq(design, target, rcond=None)
    return dict(zip(columns, map(float, weights), strict=True))


def _element_volumes(rows: list[Counter], volumes: list[float]) -> dict[str, float]:
    """Å^3 per atom of each element: least squares of cell volume on element counts."""
    elements = sorted({e for row in rows for e in row})
    design = np.array([[row.get(e, 0) for e in elements] for row in rows], dtype=float)
    per_atom, *_ = np.linalg.lstsq(design, np.asarray(volumes), rcond=None)
    return dict(zip(elements, map(float, per_atom), strict=True))


@dataclass
class CompositionPrior:
    prototypes: list[Prototype]
    volumes: dict[str, float]  # Å^3 per atom of each element (least squares), the fallback
    known: set[str]  # composition keys of the training crystals
    explore: float = 0.0
    n_fit: int = 0
    n_skipped: int = 0
    lengths: dict[str, float] = field(default_factory=dict)  # "role:element" -> Å of V^(1/3)

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(cls, structures: Sequence[Structure], explore: float = 0.0) -> CompositionPrior:
        """Learn prototypes, per-role element distributions and element volumes."""
        protos: dict[str, Prototype] = {}
        assigned: list[tuple[str, dict[int, list[str]]]] = []
        unassigned: list[Structure] = []
        rows, volumes = [], []
        for s in structures:
            rows.append(Counter(site.specie.symbol for site in s))
            volumes.append(s.volume)
            ideal = ideal_roles(s)
            if ideal is None:
                unassigned.append(s)
                continue
            frac, cns = ideal
            key = _prototype_key(cns)
            if key not in protos:
                protos[key] = Prototype(key, np.asarray(s.lattice.matrix) / s.volume ** (1 / 3), frac, list(cns))
            protos[key].weight += 1
            by_role = _roles_to_elements(s, cns)
            assigned.append((key, by_role, s, cns))
        total = sum(p.weight for p in protos.values())
        kept = {k: p for k, p in protos.items() if total and p.weight / total >= MIN_PROTO_SHARE}
        if not kept:
            raise ValueError("no prototype holds a fifth of the training crystals on the half grid: nothing to learn")
        known: set[str] = set()
        candidates: dict[tuple[str, str], list[dict]] = {}
        for key, by_role, structure, cns in assigned:
            if key not in kept:
                continue
            candidates.setdefault((key, signature(by_role)), []).append(_template(structure, cns, distorted=False))
            for role, symbols in by_role.items():
                kept[key].multisets.setdefault(role, Counter())[tuple(sorted(symbols))] += 1
                kept[key].marginals.setdefault(role, Counter()).update(symbols)
            known.add(composition_key(key, by_role))
        # distorted crystals (off the grid, or snapped into a rare prototype) are known under the
        # role order their geometry gives (_distorted_roles: the ideal order for all 1,378 held-out
        # crystals on the grid). Marking every order their elements allow, as before session 8, also
        # hid the A/B-swapped crystal, a different one: 375 of the 1,887 held-out crystals.
        odd = unassigned + [a[2] for a in assigned if a[0] not in kept]
        for s in odd:
            for proto in kept.values():
                roles = _distorted_roles(s, proto)
                if roles is not None:
                    known.add(composition_key(proto.key, _roles_to_elements(s, roles)))
        for p in kept.values():
            for table in (*p.multisets.values(), *p.marginals.values()):
                for rare in [k for k, c in table.items() if c < MIN_COUNT]:
                    del table[rare]
        # distorted training crystals are templates too: their displacements are the family's own
        for s_odd in odd:
            for key, proto in kept.items():
                roles = _distorted_roles(s_odd, proto)
                if roles is not None:
                    by_role = _roles_to_elements(s_odd, roles)
                    candidates.setdefault((key, signature(by_role)), []).append(_template(s_odd, roles, distorted=True))
                    break
        for (key, sig), pool in candidates.items():
            kept[key].templates[sig] = _distinct_geometries(pool)
        n_kept = int(sum(p.weight for p in kept.values()))
        for p in kept.values():
            p.weight /= n_kept
        per_atom = _element_volumes(rows, volumes)
        lengths = _role_lengths([(by_role, st.volume) for key, by_role, st, _ in assigned if key in kept])
        log.info("composition prior: %d prototypes from %d crystals (%d off the grid or distorted)",
                 len(kept), n_kept, len(odd))  # fmt: skip
        return cls(list(kept.values()), per_atom, known, explore, n_kept, len(odd), lengths)

    # -- sampling -----------------------------------------------------------------------------
    def _draw(self, proto: Prototype, rng: np.random.Generator) -> dict[int, list[str]]:
        out = {}
        for role, sites in proto.role_sites().items():
            if len(sites) > 1 and rng.random() < self.explore:
                symbols, counts = zip(*proto.marginals[role].items(), strict=True)
                p = np.asarray(counts, float) / sum(counts)
                out[role] = [str(x) for x in rng.choice(symbols, size=len(sites), p=p)]
            else:
                multisets, counts = zip(*proto.multisets[role].items(), strict=True)
                p = np.asarray(counts, float) / sum(counts)
                out[role] = list(multisets[int(rng.choice(len(multisets), p=p))])
        return out

    def _pool(self, proto: Prototype, by_role: dict[int, list[str]]) -> list[dict]:
        return proto.templates.get(signature(by_role)) or [t for ts in proto.templates.values() for t in ts]

    def _build(self, proto: Prototype, by_role: dict[int, list[str]], rng: np.random.Generator,
               index: int | None = None) -> Structure:  # fmt: skip
        """Substitute the drawn elements into a training crystal of the same multi-site signature
        (its origin, arrangement and displacements kept: ideal or distorted, as the data has them),
        or, for a signature no training crystal has, into any template with the multi-site elements
        placed at random. ``index`` picks the template (default: at random)."""
        sig = signature(by_role)
        pool = self._pool(proto, by_role)
        if index is None:
            weights = np.array([t.get("weight", 1) for t in pool], dtype=float)
            index = int(rng.choice(len(pool), p=weights / weights.sum()))
        template = pool[index]
        species = list(template["species"])
        for role in by_role:
            sites = [i for i, r in enumerate(template["roles"]) if r == role]
            if len(sites) == 1 or sig not in proto.templates:
                for site, symbol in zip(sites, rng.permutation(by_role[role]), strict=True):
                    species[site] = str(symbol)
        keys = [f"{r}:{e}" for r, e in zip(template["roles"], species, strict=True)]
        if all(k in self.lengths for k in keys):
            volume = sum(self.lengths[k] for k in keys) ** 3
        else:
            volume = sum(self.volumes[s] for s in species)
        volume = max(volume, 2.0 * len(species))  # a least-squares volume can be tiny for rare elements
        return Structure(Lattice(np.asarray(template["lattice"]) * volume ** (1 / 3)), species, template["frac"])

    def sample(self, n: int, seed: int = 0, exclude_known: bool = True, unique: bool = True,
               max_tries: int = 200) -> list[Structure]:  # fmt: skip
        """n ideal crystals with compositions drawn from the learned site distributions.

        ``exclude_known`` skips compositions of training crystals, ``unique`` never repeats one in
        this call; when the space runs out (``max_tries`` draws per sample), repeats are allowed
        and a warning says so."""
        rng = np.random.default_rng(seed)
        weights = np.array([p.weight for p in self.prototypes])
        seen: set[str] = set()
        drawn: list[tuple[Prototype, dict[int, list[str]], list[int]]] = []  # new ones, templates left
        out: list[Structure] = []
        repeats = exhausted = 0
        for _ in range(n):
            choice = None
            for _attempt in range(max_tries):
                proto = self.prototypes[int(rng.choice(len(self.prototypes), p=weights))]
                by_role = self._draw(proto, rng)
                key = composition_key(proto.key, by_role)
                if not (exclude_known and key in self.known or unique and key in seen):
                    seen.add(key)
                    pool = self._pool(proto, by_role)
                    weights_t = np.array([t.get("weight", 1) for t in pool], dtype=float)
                    first = int(rng.choice(len(pool), p=weights_t / weights_t.sum()))  # as common as in the data
                    unused = [i for i in rng.permutation(len(pool)) if i != first]
                    choice = (proto, by_role, first)
                    drawn.append((proto, by_role, unused))
                    break
            if choice is None:  # no new composition left: a drawn one on a template it has not had
                repeats += 1
                left = [d for d in drawn if d[2]]
                if left:
                    proto, by_role, unused = left[int(rng.integers(len(left)))]
                    choice = (proto, by_role, int(unused.pop()))
                else:
                    exhausted += 1
                    choice = drawn[int(rng.integers(len(drawn)))][:2] + (None,) if drawn else (proto, by_role, None)
            out.append(self._build(*choice[:2], rng, index=choice[2]))
        if repeats:
            log.warning("composition prior: %d of %d samples reuse one of the %d new compositions on another "
                        "template (%d on a template already used)", repeats, n, len(drawn), exhausted)  # fmt: skip
        return out

    # -- storage ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        protos = [{"key": p.key, "lattice": p.lattice.round(6).tolist(), "frac": p.frac.tolist(), "roles": p.roles,
                   "weight": p.weight,
                   "multisets": {str(r): [[list(m), c] for m, c in ms.items()] for r, ms in p.multisets.items()},
                   "marginals": {str(r): dict(m) for r, m in p.marginals.items()}, "templates": p.templates}
                  for p in self.prototypes]  # fmt: skip
        return {"format": FORMAT, "explore": self.explore, "n_fit": self.n_fit, "n_skipped": self.n_skipped,
                "volumes": self.volumes, "lengths": self.lengths, "prototypes": protos, "known": sorted(self.known)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict, source: str = "composition prior") -> CompositionPrior:
        if data.get("format") != FORMAT:
            raise CheckpointError(source, f"not a composition prior (format {data.get('format')!r})")
        protos = []
        for d in data["prototypes"]:
            protos.append(Prototype(
                d["key"], np.asarray(d["lattice"], float), np.asarray(d["frac"], float), [int(r) for r in d["roles"]],
                float(d["weight"]),
                {int(r): Counter({tuple(m): int(c) for m, c in ms}) for r, ms in d["multisets"].items()},
                {int(r): Counter({str(e): int(c) for e, c in m.items()}) for r, m in d["marginals"].items()},
                {str(k): list(v) for k, v in d["templates"].items()},
            ))  # fmt: skip
        return cls(protos, {str(k): float(v) for k, v in data["volumes"].items()}, set(data["known"]),
                   float(data["explore"]), int(data.get("n_fit", 0)), int(data.get("n_skipped", 0)),
                   {str(k): float(v) for k, v in data.get("lengths", {}).items()})  # fmt: skip

    def save(self, path: str | Path) -> Path:
        return atomic_write(path, json.dumps(self.to_dict(), separators=(",", ":")), force=True)

    @classmethod
    def load(cls, path: str | Path) -> CompositionPrior:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), str(path))
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(str(path), f"unreadable composition prior ({exc})") from None
