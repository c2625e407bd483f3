"""Reading a model config back from a checkpoint's meta.json, strictly: a key the config does not
know means the checkpoint comes from another version of the code, and loading it would silently
build a different network, so it is refused. Keys a config retired are dropped with a note."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import fields
from typing import Any, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C")


def strict_from_dict(cls: type[C], data: dict[str, Any], retired: Iterable[str] = ()) -> C:
    """``cls(**data)``; ValueError naming any key ``cls`` has no field for (``retired`` keys are
    dropped: configs written before the field went still load)."""
    data = dict(data)
    for key in set(retired) & set(data):
        log.debug("%s: ignoring the retired setting %s=%r", cls.__name__, key, data.pop(key))
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**data)
