"""Raw-dataset readers, one module per dataset, each registered under the dataset's name.

>>> from austack.datasets import create_reader
>>> reader = create_reader("bp4d", "/data/BP4D")        # verifies the layout first
>>> sessions, anomalies = reader.read_all()
"""
import importlib
import importlib.util

from .base import (READERS, Anomaly, AnomalyReport, FrameRecord, PixelSource, Reader, SessionRecord,
                   SessionRef, create_reader, list_readers, register_reader)

# Importing a reader module registers it.
READER_MODULES = ("bp4d", "bp4dplus", "disfa", "gft", "affwild2")
for _name in READER_MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")

__all__ = ["READERS", "Anomaly", "AnomalyReport", "FrameRecord", "PixelSource", "Reader", "SessionRecord",
           "SessionRef", "create_reader", "list_readers", "register_reader"]
