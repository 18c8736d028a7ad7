"""BP4D+ (MMSE): 140 subjects (F001-F082, M001-M058), tasks T1-T10, AU occurrence coded for T1, T6, T7, T8.

Layout read (`root` is the folder that holds these):

    2D+3D/<SUBJ>.zip                       members <top>/<TASK>/<n>.jpg (any top folder)
    2D+3D/<SUBJ>/<TASK>/<n>.jpg            the same, extracted (used when there is no zip)
    AUCoding/AU_OCC/<SUBJ>_<TASK>.csv      frame column, then 34 AU columns named by number

CSV parsing, code handling and missing-image reporting are BP4D's (`bp4d.py`); what differs is
where the pixels are (pixel sources of kind "zip": path = the zip, member = the member name),
the frame mapping (CSV frame f is jpg f-1) and that no landmarks ship. jpg names mix 3- and
4-digit padding: names are matched by number, and a missing one is named with the padding
probed from its neighbours.

Options (keyword arguments of the constructor, and of `create_reader("bp4d+", root, ...)`):
    frame_offset: int = -1  CSV frame f is image f + frame_offset.
    protocol: str           protocol whose AUs and label rule are read (default bp4d+-3fold@v1,
                            a split defined by austack: BP4D+ has no canonical one).

Citation: Z. Zhang, J. M. Girard, Y. Wu et al., "Multimodal spontaneous emotion corpus for
human behavior analysis", CVPR 2016.
"""
from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from ..errors import RawDataError
from .base import AnomalyReport, Option, PixelSource, SessionRef, register_reader
from .bp4d import LABEL_DIR, BP4DReader, FrameFiles, OccTable, index_names, list_folder

FRAME_DIR = "2D+3D"


@register_reader("bp4d+")
class BP4DPlusReader(BP4DReader):
    """BP4D+ raw distribution -> sessions of frames (zip members) with 12 AU labels."""

    dataset = "bp4d+"
    protocol = "bp4d+-3fold@v1"
    expected = (f"frames in {FRAME_DIR}/<SUBJ>.zip as <top>/<TASK>/<n>.jpg (or extracted to "
                f"{FRAME_DIR}/<SUBJ>/<TASK>/<n>.jpg), labels in {LABEL_DIR}/<SUBJ>_<TASK>.csv")
    frame_dirs = (FRAME_DIR,)
    declared_options = (Option("frame_offset", -1, "CSV frame f is image f + frame_offset", kind=int),)

    def frame_files(self, ref: SessionRef, anomalies: AnomalyReport) -> FrameFiles | None:
        archive = self.frames_dir / f"{ref.subject}.zip"
        if not archive.is_file():
            return list_folder(self.frames_dir / ref.subject / ref.session, anomalies)
        try:
            with zipfile.ZipFile(archive) as z:
                members = z.namelist()
        except (OSError, zipfile.BadZipFile) as e:
            raise RawDataError(f"{archive}: not a readable zip archive: {e}", path=archive) from None
        # Members <top>/<TASK>/<n>.jpg: match the task folder by name, whatever lies above it.
        folders: dict[str, list[str]] = {}
        for member in members:
            p = PurePosixPath(member)
            if len(p.parts) >= 2 and p.parts[-2].upper() == ref.session.upper():
                folders.setdefault(str(p.parent), []).append(p.name)
        if not folders:
            return None
        if len(folders) > 1:
            raise RawDataError(f"{archive}: {len(folders)} folders named {ref.session} ({', '.join(sorted(folders))}); "
                               f"expected one <top>/{ref.session}/", path=archive)
        (folder, names), = folders.items()
        return index_names(names, f"{archive}:{folder}",
                           lambda name: PixelSource("zip", str(archive), f"{folder}/{name}"), anomalies)

    def frame_folder(self, ref: SessionRef) -> str:
        archive = self.frames_dir / f"{ref.subject}.zip"
        if archive.is_file():
            return f"{archive}:<top>/{ref.session}"
        return str(self.frames_dir / ref.subject / ref.session)

    def landmarks(self, ref: SessionRef, table: OccTable, files: FrameFiles | None,
                  anomalies: AnomalyReport) -> None:
        """BP4D+ ships no 2D landmark files in this layout: landmarks come from the detector."""
        return None
