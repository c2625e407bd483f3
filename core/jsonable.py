"""numpy, torch and dataclass values as plain JSON types: one converter for meta.json, the
evaluation JSON and every other file the core writes."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy/torch scalars and arrays, tuples, dataclasses and Paths turned into JSON
    types (TypeError for anything else)."""
    if hasattr(obj, "to_list") and not hasattr(obj, "tolist"):
        obj = obj.to_list()  # e.g. core.elements.Vocabulary
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = obj.to_dict() if hasattr(obj, "to_dict") else asdict(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "tolist"):  # numpy arrays and torch tensors (torch is not imported for this)
        return jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
