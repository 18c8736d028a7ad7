"""Raw-dataset readers, one module per dataset, each registered under the dataset's name.

>>> from austack.datasets import create_reader
>>> reader = create_reader("bp4d", "/data/BP4D")        # verifies the layout first
>>> sessions, anomalies = reader.read_all()
"""
from . import affwild2, bp4d, bp4dplus, disfa, gft  # noqa: F401  (importing a reader registers it)
from .base import (READERS, Anomaly, AnomalyReport, FrameRecord, PixelSource, Reader, SessionRecord,
                   SessionRef, create_reader, list_readers, register_reader)

__all__ = ["READERS", "Anomaly", "AnomalyReport", "FrameRecord", "PixelSource", "Reader", "SessionRecord",
           "SessionRef", "create_reader", "list_readers", "register_reader"]
