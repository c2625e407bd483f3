"""Sessions (``--state FILE.json``): what is shown and how, as JSON, for bug reports and docs.

Keys: ``source`` (gallery:<id> or a file path), ``cif`` (the shown crystal as P1 CIF text, so a
decoded crystal comes back too), ``z`` and ``cond`` (latent point, restored when a model set is
loaded), ``symprec`` and ``display`` (``DisplaySettings`` fields).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icsg3d_gui.display_settings import as_tuples

if TYPE_CHECKING:
    from icsg3d_gui.protocols import Window

log = logging.getLogger(__name__)


def to_dict(win: Window) -> dict[str, Any]:
    from core.export import session_dict

    st = win.state
    return session_dict(st.source, st.structure, st.z, st.cond, win.controller.symprec,
                        dataclasses.asdict(win.viewer.settings))


def apply(win: Window, data: dict[str, Any]) -> None:
    """Restore a session; unknown display keys are ignored, a missing crystal is an error box."""
    display = {k: v for k, v in (data.get("display") or {}).items()
               if k in {f.name for f in dataclasses.fields(win.viewer.settings)}}
    for key in ("clim_fraction", "slice_frac", "repeat", "slice_hkl", "iso_levels", "bond_rules"):
        if key in display:
            display[key] = as_tuples(display[key])
    if display:
        win.viewer.update_settings(**display)
        win.display.refresh()
    if "symprec" in data:
        win.properties.symprec.setValue(float(data["symprec"]))
    source = str(data.get("source") or "")
    if source.startswith("gallery:"):
        win.open_gallery(source.split(":", 1)[1])
    elif source and Path(source).is_file():
        win.open_path(source)
    elif data.get("cif"):
        from core.structures import parse_cif

        try:
            win.controller.show_structure(parse_cif(data["cif"], "session"), source or "session")
            win.viewer.reset_view()
        except Exception as exc:  # noqa: BLE001
            win.show_error("Session crystal unreadable", str(exc))
    if data.get("z") is not None:
        import numpy as np

        z, cond = np.asarray(data["z"], dtype=np.float32), int(data.get("cond") or 0)
        if win.state.has_model:
            win.controller.set_base(z, cond)
        else:  # restored once the model set has loaded
            win.controller.pending_z = (z, cond)
