"""austack: reproducible facial action unit detection.

raw files -> readers (`austack.datasets`) -> landmarks (`austack.faces.landmarks`) -> alignment
(`austack.faces.align`) -> HDF5 store (`austack.store`) -> torch dataset (`austack.data`) ->
encoder + loss (`austack.models`, `austack.losses`) -> training and evaluation
(`austack.engine`, `austack.metrics`) -> results database and leaderboards (`austack.results`).
"""
__version__ = "0.1.0"

from .errors import AustackError  # noqa: E402
from .protocols import load_protocol, list_protocols  # noqa: E402

__all__ = ["__version__", "AustackError", "load_protocol", "list_protocols"]
