"""Versioned fold protocols (data). Installed as `austack._resources.protocols`."""
