"""Pass 1 of prepare: every session's labels, no pixels, for the totals, the reader's anomalies
and the store settings."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..faces.align import alignment_params
from ..datasets.base import AnomalyReport, SessionRef, create_reader
from ..protocols import load_protocol
from ..store import StoreSettings
from ..store._provenance import synth_provenance
from .job import Job, pixel_decoder
from .options import PrepareOptions


@dataclass
class Plan:
    """What pass 1 learnt: the sessions in write order, their sizes, and the store settings."""

    reader: object
    refs: list[SessionRef]
    counts: list[int]
    settings: StoreSettings
    reader_report: AnomalyReport
    source: dict
    synthetic: dict | None

    def job_template(self, options: PrepareOptions) -> Job:
        """The chunk job with every setting and no frames (`steps.job_maker` adds them)."""
        s, o = self.settings, options
        return Job([], o.landmarks, o.size, o.box_enlarge, o.encoding, s.jpeg_quality, s.with_intensities,
                   len(s.aus), o.detect_max_side, o.device)


def make_plan(dataset: str, raw_dir: str | os.PathLike, options: PrepareOptions | None = None,
              **settings) -> Plan:
    """Pass 1: labels only. `settings` are PrepareOptions fields, for a call without `options`."""
    o = options if options is not None else PrepareOptions(**settings)
    reader = create_reader(dataset, raw_dir, **(o.reader_options or {}))
    protocol = load_protocol(reader.protocol)
    refs = reader.sessions()
    report, counts, with_intensities = AnomalyReport(), [], False
    for ref in refs:
        rec = reader.read_session(ref, report)
        counts.append(len(rec.frames))
        with_intensities |= any(f.intensities is not None for f in rec.frames)
    settings = StoreSettings(dataset=reader.dataset, aus=protocol.aus, protocol=protocol.id,
                             protocol_hash=protocol.hash, alignment=alignment_params(o.size, o.box_enlarge),
                             landmark_source=o.landmarks, image_encoding=o.encoding,
                             with_intensities=with_intensities, pixel_decoder=pixel_decoder(o.device))
    source = {"root": str(reader.root), "reader_options": reader.options, "sessions": len(refs),
              "frames": sum(counts), "landmarks": o.landmarks, "detect_max_side": o.detect_max_side,
              "chunk_frames": o.chunk_frames, "protocol_file": protocol.path}
    return Plan(reader, refs, counts, settings, report, source, synth_provenance(reader.root))
