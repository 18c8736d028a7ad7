"""The one exception hierarchy of austack.

Library code raises these; the CLI turns any `AustackError` into a one-line message and a
non-zero exit, never a traceback. Messages are API: tests match on them. Every error that is
about a file carries that file in `path` and names it in the message.
"""
from __future__ import annotations

import difflib
from os import PathLike
from typing import Iterable


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float = 0.5) -> str:
    """'; did you mean 'a', 'b'?' for the closest of `choices` to `name` (each once), or ''."""
    close = difflib.get_close_matches(name, list(dict.fromkeys(choices)), n=3, cutoff=cutoff)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


class AustackError(Exception):
    """Base class. `path` is the offending file or folder, when there is one."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class ConfigError(AustackError, ValueError):
    """An option, recipe or argument that cannot be used as given."""

    exit_code = 2


class UnknownNameError(ConfigError, KeyError):
    """A name that no registry holds (backbone, loss, reader, protocol ...)."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0])


class ProtocolError(AustackError):
    """A protocol file that is malformed, or a fold/split that the protocol does not have."""


class DatasetNotFoundError(AustackError, FileNotFoundError):
    """A raw-data root that is not a distribution of the dataset asked for."""


class RawDataError(AustackError):
    """A file inside a raw distribution that cannot be read as its dataset defines it."""


class StoreError(AustackError):
    """A prepared HDF5 store that is missing, incomplete, corrupt or of another schema."""


class StoreExistsError(StoreError, FileExistsError):
    """Refusing to overwrite an existing store without --force."""


class StoreMismatchError(StoreError):
    """Resuming into a store whose settings differ from the run's (existing vs new)."""


class ResultsError(AustackError):
    """The results database or a published-results table is malformed."""
