"""Which stored frame a row of another tool's CSV describes (docs/export.md, "Frame order").

A row names its frame either by a raw file path (`input`: an image, or a video plus the frame
column) or, in a per-sequence CSV such as OpenFace's, by the CSV's own name plus the frame
column. Paths are taken relative to the raw root when they lie under it. The subject is the
path's folder named like a stored subject (or a stored subject inside a name, as in
`LeftVideoSN001_comp`), the session the folder after it (or a stored session name in the file
name; a subject's only session otherwise). Frame numbers map to stored frames per dataset:

- image files: the number in the file name; BP4D: minus the reader's `frame_offset` (the
  AU_OCC frame number), BP4D+: plus 1 (frame f is jpg f-1), DISFA: plus 1 (0-based frames
  as `austack export` names them); otherwise as is.
- video files (DISFA, GFT, Aff-Wild2): video frame i (0-based) is stored frame i + 1.
- per-sequence index in an image folder (BP4D, BP4D+): the i-th image of the session's folder
  in numeric order, read from the raw root, then the image rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath


from ..errors import ConfigError
from ..store import Store

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
VIDEO_DATASETS = {"disfa", "gft", "affwild2"}


def image_to_frame(dataset: str, number: int, options: dict) -> int:
    if dataset == "bp4d":
        return number - int(options.get("frame_offset", 0) or 0)
    if dataset in ("bp4d+", "disfa"):
        return number + 1
    return number


def _token(name: str, text: str) -> bool:
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(name)}(?![0-9A-Za-z])", text) is not None


def _inside(name: str, text: str) -> bool:
    return re.search(rf"(?<![0-9]){re.escape(name)}(?![0-9])", text) is not None


@dataclass
class FrameIndex:
    """The stored frames of a store, looked up by (subject, session, frame)."""

    store: Store
    raw_root: Path | None
    keys: dict[tuple[str, str, int], int] = field(default_factory=dict)
    sessions: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        s = self.store
        for i, key in enumerate(zip(s.subjects.tolist(), s.session_ids.tolist(), s.frames.tolist())):
            self.keys[(key[0], key[1], int(key[2]))] = i
            self.sessions.setdefault(key[0], [])
            if key[1] not in self.sessions[key[0]]:
                self.sessions[key[0]].append(key[1])
        self.options = (s.attrs.get("source") or {}).get("reader_options") or {}
        self.dataset = s.dataset
        self._units: dict[tuple[str, ...], tuple[str | None, str | None, str]] = {}

    # -- names -------------------------------------------------------------------------------
    def relative(self, path: str) -> PurePath:
        p = PurePath(path)
        if p.is_absolute() and self.raw_root is not None:
            try:
                return p.relative_to(self.raw_root)
            except ValueError:
                pass
        return p

    def unit(self, parts: tuple[str, ...]) -> tuple[str | None, str | None, str]:
        """(subject, session, why not) from path parts (folders, then the file's stem); the
        rows of one video or folder share their parts, so each is worked out once."""
        if parts not in self._units:
            self._units[parts] = self._unit(parts)
        return self._units[parts]

    def _unit(self, parts: tuple[str, ...]) -> tuple[str | None, str | None, str]:
        if self.dataset == "disfa" and any(re.search("right", p, re.IGNORECASE) for p in parts):
            return None, None, "a right-camera file; DISFA stores hold the left camera"
        subject, at = None, -1
        for j in range(len(parts) - 1, -1, -1):
            if parts[j] in self.sessions:
                subject, at = parts[j], j
                break
        if subject is None:
            for j in range(len(parts) - 1, -1, -1):
                hits = [u for u in self.sessions if _inside(u, parts[j])]
                if len(hits) == 1:
                    subject, at = hits[0], j
                    break
        if subject is None:
            return None, None, "no stored subject in the name"
        sessions = self.sessions[subject]
        later = [p for p in parts[at + 1:] if p in sessions]
        if later:
            return subject, later[0], ""
        named = [x for x in sessions if any(_token(x, p) for p in parts)]
        if len(named) == 1:
            return subject, named[0], ""
        if len(sessions) == 1:
            return subject, sessions[0], ""
        return subject, None, f"{subject} has sessions {', '.join(sessions)} and the name picks none"

    def lookup(self, subject: str, session: str, frame: int) -> int | None:
        return self.keys.get((subject, session, int(frame)))

    # -- frame order -------------------------------------------------------------------------
    def from_image(self, number: int) -> int:
        return image_to_frame(self.dataset, number, self.options)

    def from_sequence(self, subject: str, session: str, index0: int) -> tuple[int | None, str]:
        """Stored frame of the `index0`-th frame (0-based) of a session, in the raw order."""
        if self.dataset in VIDEO_DATASETS:
            return index0 + 1, ""
        numbers = self.folder_numbers(subject, session)
        if isinstance(numbers, str):
            return None, numbers
        if not 0 <= index0 < len(numbers):
            return None, f"frame index {index0} is past the {len(numbers)} images of {subject}/{session}"
        return self.from_image(numbers[index0]), ""

    @cache
    def folder_numbers(self, subject: str, session: str) -> list[int] | str:
        """The image numbers of a session's raw folder in numeric order, or why there are none."""
        if self.raw_root is None or not self.raw_root.is_dir():
            raise ConfigError(f"per-sequence rows of {self.dataset} are matched by their position in the raw "
                              f"frame folder; pass --raw with the raw dataset root (the store records "
                              f"{self.raw_root or 'none'})")
        for pattern in (f"{subject}/{session}", f"*/{subject}/{session}", f"*/*/{subject}/{session}"):
            folders = [p for p in self.raw_root.glob(pattern) if p.is_dir()]
            if folders:
                nums = sorted(int(m.group()) for p in folders[0].iterdir()
                              if p.suffix.lower() in IMAGE_EXT and (m := re.fullmatch(r"\d+", p.stem)))
                return nums
        return f"no folder {subject}/{session} under {self.raw_root}"

    __hash__ = object.__hash__

