"""Exceptions that carry a user-facing reason.

Every error a user can cause (bad file, bad checkpoint, failed segmentation) is an ``ICSGError``;
the CLI prints ``str(error)`` on one line and exits 2, the GUI shows it in a message box.
"""

from __future__ import annotations


class ICSGError(Exception):
    """Base class of all user-facing errors."""


class _SourcedError(ICSGError):
    """An error about a named input (file, CSV row, checkpoint)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = str(source)
        self.reason = str(reason)
        super().__init__(f"{self.source}: {self.reason}")


class StructureError(_SourcedError, ValueError):
    """A crystal that cannot be read or represented; names the input and the reason."""


class CheckpointError(_SourcedError):
    """A checkpoint that is missing, truncated, foreign or unsafe."""


class SegmentationError(ICSGError):
    """A density/probability grid from which no sensible crystal could be recovered."""


class OutputExistsError(ICSGError, FileExistsError):
    """An output file exists and overwriting was not allowed (use --force in the CLI)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: exists already (use --force to overwrite)")
