"""`austack predict`: a detector saved by `austack bench` applied to images and videos."""
from __future__ import annotations

from pathlib import Path

import click

from ._predict_view import PredictView, print_summary


@click.command()
@click.argument("detector", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The CSV to write (one row per frame, or per face); PRED.csv.json beside it "
                   "describes the detector and the run.")
@click.option("--fold", type=click.IntRange(1), default=None,
              help="With a run directory as DETECTOR: the fold whose detector to use.")
@click.option("--device", default="auto", show_default=True,
              help="auto | cpu | cuda | cuda:N (auto: CUDA when available, with bf16).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Faces per forward pass.")
@click.option("--all-faces", is_flag=True,
              help="On images: one row per face found (largest first), not the largest only.")
@click.option("--upsample", type=click.IntRange(0, 3), default=0, show_default=True,
              help="Times dlib doubles the frame to find small faces (under about 80 px): "
                   "0 is what prepare uses; 1 for small videos such as 176x144.")
def cli(detector, inputs, out, fold, device, batch_size, all_faces, upsample):
    """Per-frame AU probabilities of DETECTOR on INPUT... (images, folders of images, videos).

    \b
    DETECTOR: a detector.pt saved by `austack bench`, or its run dir with --fold.
    Each frame goes the way `prepare` takes it: dlib landmarks (one tracker per
    video or folder), the 49-point alignment, the detector's own preprocessing.
    Columns: input, frame, time_s, face, face_x/y/w/h, AUnn (probability),
    AUnn_c (0/1 at the detector's thresholds); a frame without a face has
    face=0 and empty AU cells. See docs/predict.md.

    \b
    Example:
      austack predict runs/.../fold1/detector.pt clip.mp4 --out clip.csv
    """
    from austack.devices import resolve_device
    from austack.inference import locate_detector, predict_to_csv
    from austack.inference.frames import count_frames
    from austack.inference.inputs import expand_inputs
    from austack.inference.api import check_out_folder
    from austack.models.detector import load_detector

    check_out_folder(out.expanduser())
    path = locate_detector(detector, fold)
    dev = resolve_device(device)
    det = load_detector(path, map_location=dev)
    total = count_frames(expand_inputs(inputs))
    with PredictView(total) as view:
        tally, anomalies, side = predict_to_csv(det, path, inputs, out, batch_size=batch_size,
                                                all_faces=all_faces, upsample=upsample,
                                                device=str(dev), on_frame=view.update)
    print_summary(view.console, det, path, out, side, tally, anomalies, upsample)
    if tally.frames == tally.undecodable:
        raise click.ClickException(f"no frame of the {len(inputs)} input(s) could be decoded ({tally.frames} "
                                   f"unreadable; {side} lists them): check the files")
