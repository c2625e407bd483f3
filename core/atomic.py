"""One way to write a file: a temporary file beside it, flushed to disk, then renamed over it.

A reader (or a crash) never sees a half-written file, and nothing is overwritten unless asked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes | str, force: bool = False) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` atomically; refuses an existing path unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files: give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
