"""Measured results: the row schema, the SQLite results database and leaderboards."""
from .schema import ResultRow

__all__ = ["ResultRow"]
