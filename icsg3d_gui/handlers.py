"""Request handlers of the inference thread: plain functions of (model, payload, cancelled).

They run in the worker thread only, call the ModelSet interface (ARCHITECTURE.md: encode,
decode_density, decode, predict, sample/around, interpolate) and return numpy arrays, Structures
and dicts that the GUI thread can show without touching torch. ``cancelled()`` is polled between
decodes of long jobs so that closing the app waits for one decode at most.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from core.protocols import ModelSetLike

log = logging.getLogger(__name__)

_refs_lock = threading.Lock()
_refs: list[tuple[str, Any]] | None = None
_gallery_index: Any = None  # core.known.KnownCrystals of the gallery, built on first use


def gallery_references() -> list[tuple[str, Any]]:
    """(id, Structure) of every gallery crystal, loaded once per process (thread-safe)."""
    global _refs
    with _refs_lock:
        if _refs is None:
            from core.gallery import list_gallery, load_gallery

            refs = []
            for item in list_gallery():
                try:
                    refs.append((item.id, load_gallery(item.id)))
                except Exception as exc:  # noqa: BLE001 (one bad shipped file must not stop the app)
                    log.warning("gallery crystal %s unreadable: %s", item.id, exc)
            _refs = refs
        return _refs


def _decode(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    z = np.asarray(p["z"], dtype=np.float32)[None]
    dens, abc = model.decode_density(z, [int(p["cond"])])
    return {"density": np.asarray(dens[0]), "abc": np.asarray(abc[0]), "z": z[0], "cond": int(p["cond"]),
            "latent_property": latent_property(model, z)}


def latent_property(model: ModelSetLike, z: np.ndarray) -> float | None:
    """The VAE's latent property head at z (1, L), when the model set has a conditioning property."""
    if not model.prop_name:
        return None
    try:
        return float(np.asarray(model.predicted_property(z))[0])
    except Exception as exc:  # noqa: BLE001 (a missing/odd head only hides the read-out)
        log.debug("latent property head failed: %s", exc)
        return None


def _full_rows(model: ModelSetLike, z: np.ndarray, cond: list[int]) -> list[dict]:
    """Decode z (B, L) fully: density, labels, crystal and its properties (B dicts)."""
    decoded = model.decode(np.asarray(z, dtype=np.float32), cond)  # DecodedLike: properties included
    rows = []
    for i, d in enumerate(decoded):
        props = dict(d.properties)
        rows.append({
            "density": np.asarray(d.density),
            "labels": None if d.labels is None else np.asarray(d.labels),
            "blobs": list(d.blobs),
            "disagreements": list(d.disagreements),
            "abc": np.asarray(d.abc, dtype=float),
            "structure": d.structure,
            "error": d.error,
            "properties": props,
            "z": np.asarray(z[i]),
            "cond": int(cond[i]),
            "latent_property": latent_property(model, np.asarray(z[i : i + 1], dtype=np.float32)),
        })
    return rows


def _full(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    row = _full_rows(model, np.asarray(p["z"])[None], [int(p["cond"])])[0]
    row["notify"] = bool(p.get("notify", False))  # a discrete action: report a failed segmentation
    return row


def _encode(model: Any, p: dict, cancelled: Callable[[], bool]) -> np.ndarray:
    return np.asarray(model.encode(list(p["structures"]), p.get("cond")))


def _recheck(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    """What the model makes of an opened crystal: encode (mean z) -> decode, compared with the
    input by the CDVAE matcher. The Properties dock states it beside the true crystal."""
    from core.metrics.matching import reconstructs

    structure = p["structure"]
    out = model.reconstruct([structure], labels=False)[0]
    made = out.structure
    match = made is not None and made.composition.reduced_composition == structure.composition.reduced_composition
    if match:
        match = reconstructs(made, structure)  # a matcher failure is "no match" (logged)
    return {"formula": made.composition.reduced_formula if made is not None else None,
            "error": out.error, "match": match, "token": p.get("token")}  # fmt: skip


def _encode_each(model: Any, refs: list[tuple[str, Any]]) -> tuple[list[tuple[str, Any]], np.ndarray]:
    """Encode crystals, dropping those the model cannot take (elements outside its vocabulary).

    The gallery's crystals are built in standard settings with their ideal origins, so the frame
    search (core/canonical.py; ~3 s for the 47 at start-up on 2 cores) is skipped for them."""
    try:
        return refs, np.asarray(model.encode([s for _, s in refs], frame_search=False), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 (fall back to one by one to find the culprits)
        log.info("batch encode failed (%s); encoding one by one", exc)
    kept, zs = [], []
    for rid, s in refs:
        try:
            zs.append(np.asarray(model.encode([s], frame_search=False), dtype=np.float64)[0])
            kept.append((rid, s))
        except Exception as exc:  # noqa: BLE001
            log.info("gallery crystal %s not encodable: %s", rid, exc)
    if not kept:
        raise RuntimeError("the model set cannot encode any gallery crystal")
    return kept, np.stack(zs)


MIN_GALLERY_FOR_PCA = 8  # fewer gallery crystals in a set's domain: sliders follow its training crystals


def _latent_basis(model: Any, z: np.ndarray, k: int) -> dict:
    """Slider directions: the principal directions of the encoded gallery, or, for a set that can
    encode few of its (mostly cubic, many-element) crystals (carbon_24: only diamond), of its
    training crystals' latent means (its fitted prior); the gallery crystals are placed on them."""
    prior = getattr(model, "prior", None)
    if len(z) >= MIN_GALLERY_FOR_PCA or prior is None:
        return {**pca(z, k), "source": "gallery"}
    means = np.asarray(prior.means[:: max(1, len(prior.means) // 2000)], dtype=np.float64)
    return {**pca(means, k, place=z), "source": "training crystals"}


def _gallery(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    refs, z = _encode_each(model, gallery_references())
    out = _latent_basis(model, z, int(p.get("n_components", 8)))
    structures = [s for _, s in refs]
    out.update(z=z.astype(np.float32), ids=[i for i, _ in refs],
               formulas=[s.composition.reduced_formula for s in structures])
    # colourings of the latent map: label -> one value per crystal (NaN where unknown)
    colours = {"density (g/cm³)": [float(s.density) for s in structures],
               "number of elements": [float(len(s.composition)) for s in structures]}
    name = model.prop_name
    if name:
        head = [latent_property(model, zi[None].astype(np.float32)) for zi in z]
        colours[f"{name} (VAE latent head)"] = [np.nan if v is None else v for v in head]
    colours.update(_predicted_colours(model, structures))
    out["colours"] = colours
    return out


def _predicted_colours(model: Any, structures: list) -> dict[str, list[float]]:
    """CGCNN predictions per gallery crystal, one entry per property (crystal by crystal: a
    crystal CGCNN cannot featurise gets NaN instead of failing the whole map)."""
    if not model.property_names:
        return {}
    try:
        rows = [dict(r) for r in model.predict(structures)]
    except Exception as exc:  # noqa: BLE001 (one bad crystal: go one by one)
        log.info("batch prediction failed (%s); predicting one by one", exc)
        rows = []
        for s in structures:
            try:
                rows.append(dict(model.predict([s])[0]))
            except Exception as exc1:  # noqa: BLE001
                log.info("CGCNN cannot predict %s: %s", s.composition.reduced_formula, exc1)
                rows.append({})
    return {f"{n} (CGCNN)": [float(r.get(n, np.nan)) for r in rows] for n in model.property_names}


def gallery_index() -> Any:
    """The gallery crystals as a ``core.known.KnownCrystals`` index (built once): "matches <id>"."""
    global _gallery_index
    with _refs_lock:
        built = _gallery_index
    if built is None:
        from core.known import KnownCrystals

        refs = gallery_references()
        built = KnownCrystals([rid for rid, _ in refs], [s for _, s in refs])
        with _refs_lock:
            _gallery_index = built
    return built


def _known(model: Any) -> Any:
    """The model set's index of its training crystals (None without a model or an index)."""
    try:
        return model.known if model is not None else None
    except Exception as exc:  # noqa: BLE001 (a broken index: novelty unknown, the app goes on)
        log.warning("training-crystal index unreadable: %s", exc)
        return None


def _analyse(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    from icsg3d_gui.analysis import analyse

    out = analyse(p["structure"], float(p.get("symprec", 0.1)), gallery_index(), _known(model))
    out["token"] = p.get("token")
    return out


def pca(z: np.ndarray, k: int, place: np.ndarray | None = None) -> dict:
    """Principal directions of encoded crystals z (B, L): mean (L,), components (K, L), scales (K,),
    and xy (P, 2), the map positions of ``place`` (P, L) (default: z itself)."""
    mean = z.mean(axis=0)
    centred = z - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = max(1, min(k, vt.shape[0]))
    scales = s[:k] / np.sqrt(max(1, len(z) - 1))
    scales = np.where(scales > 1e-8, scales, 1.0)
    placed = centred if place is None else np.asarray(place) - mean
    xy = placed @ vt[:2].T if vt.shape[0] >= 2 else np.c_[placed @ vt[:1].T, np.zeros(len(placed))]
    return {"mean": mean, "components": vt[:k], "scales": scales, "xy": xy}


def _as_z(model: Any, end: Any) -> np.ndarray:
    """An interpolation end point: a latent vector (L,) as is, "gallery:<id>" or a Structure encoded."""
    if isinstance(end, np.ndarray):
        return end.astype(np.float32)
    if isinstance(end, str) and end.startswith("gallery:"):
        refs = dict(gallery_references())
        if end[8:] not in refs:
            raise KeyError(f"no gallery crystal {end[8:]!r}")
        end = refs[end[8:]]
    return np.asarray(model.encode([end]))[0]


def _interpolate(model: Any, p: dict, cancelled: Callable[[], bool]) -> list[dict]:
    za, zb = _as_z(model, p["za"]), _as_z(model, p["zb"])
    zs = np.asarray(model.interpolate(za, zb, int(p["steps"]), method=p.get("method", "slerp")))
    from icsg3d_gui.analysis import analyse

    frames = []
    known = _known(model)
    for z in zs:  # frame by frame so that closing the app mid-job waits for one decode at most
        if cancelled():
            break
        frames += _full_rows(model, z[None], [int(p["cond"])])
        s = frames[-1]["structure"]
        # the filmstrip's facts (space group, validity, novelty), computed here, not on the GUI thread
        frames[-1]["analysis"] = analyse(s, float(p.get("symprec", 0.1)), None, known) if s is not None else {}
    return frames


def _batch(model: Any, p: dict, cancelled: Callable[[], bool]) -> list[dict]:
    """n crystals from the model set's default sampler (seeded), or with ``around`` n points
    z + temperature * N(0, I) around the current one; decoded and analysed (novelty included)."""
    from icsg3d_gui.analysis import analyse

    n, seed = int(p["n"]), int(p["seed"])
    if p.get("around"):
        zs = np.asarray(model.around(np.asarray(p["z"], dtype=np.float32), n, spread=float(p["temperature"]), seed=seed))
    else:
        zs = np.asarray(model.sample(n, seed=seed))
    known = _known(model)
    rows: list[dict] = []
    for start in range(0, n, 8):
        if cancelled():
            break
        chunk = zs[start : start + 8]
        rows += _full_rows(model, chunk, [int(p["cond"])] * len(chunk))
    for row in rows:
        if cancelled():
            break
        row["analysis"] = analyse(row["structure"], float(p.get("symprec", 0.1)), gallery_index(), known) \
            if row["structure"] is not None else {"error": row["error"]}
    return rows


def _segment(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    """The segmentation of the grid on screen (an opened crystal, a CHGCAR/cube): the U-Net's, or
    the peak templates' (skewed cells, sets without a U-Net); labels on the model set's grid and
    blobs with confidences, or the reason there is none."""
    from core.errors import SegmentationError

    try:
        seg = model.segment(np.asarray(p["density"]), np.asarray(p["lattice"]))
    except SegmentationError as exc:
        return {"labels": None, "blobs": [], "error": str(exc), "method": None, "token": p.get("token")}
    return {"labels": seg.labels, "blobs": list(seg.blobs), "error": None, "method": seg.method, "token": p.get("token")}


def _predict(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    return {"rows": [dict(x) for x in model.predict(list(p["structures"]))], "token": p.get("token")}


def _sample(model: Any, p: dict, cancelled: Callable[[], bool]) -> dict:
    """One latent point from the model set's sampler (its fitted latent mixture when shipped)."""
    z = np.asarray(model.sample(1, temperature=float(p["temperature"]), seed=int(p["seed"])))[0]
    return {"z": z.astype(np.float32), "cond": int(p["cond"])}


HANDLERS: dict[str, Callable[[Any, dict, Callable[[], bool]], Any]] = {
    "sample": _sample,
    "decode": _decode,
    "full": _full,
    "encode": _encode,
    "gallery": _gallery,
    "interpolate": _interpolate,
    "batch": _batch,
    "predict": _predict,
    "analyse": _analyse,
    "recheck": _recheck,
    "segment": _segment,
}


