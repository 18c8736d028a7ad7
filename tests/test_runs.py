"""The run-directory format: fold folders are found one way, for rescore, plots and predict."""
from __future__ import annotations

import pytest

from austack.errors import ConfigError
from austack.runs.locate import locate_detector
from austack.runs.rundir import DETECTOR_NAME, PREDICTIONS_NAME, fold_dir, fold_dirs, fold_number


def _run(tmp_path):
    run = tmp_path / "bp4d-resnet18-wce-abc-seed0"
    for k, files in {1: [PREDICTIONS_NAME, DETECTOR_NAME], 2: [PREDICTIONS_NAME], 10: [DETECTOR_NAME]}.items():
        fold_dir(run, k).mkdir(parents=True)
        for name in files:
            (fold_dir(run, k) / name).write_bytes(b"x")
    return run


def test_fold_dirs_finds_the_folds_holding_a_file(tmp_path):
    run = _run(tmp_path)
    assert fold_dirs(run, PREDICTIONS_NAME) == [(1, run / "fold1"), (2, run / "fold2")]
    assert [k for k, _ in fold_dirs(run, DETECTOR_NAME)] == [1, 10]
    assert fold_dirs(run / "fold2", PREDICTIONS_NAME) == [(2, run / "fold2")]   # a fold's own folder
    assert fold_dirs(tmp_path, PREDICTIONS_NAME) == []
    assert (fold_number(run / "fold10"), fold_number(run), fold_number("foldx")) == (10, None, None)


def test_locate_detector_reads_the_same_folders(tmp_path):
    run = _run(tmp_path)
    assert locate_detector(run, 10) == run / "fold10" / DETECTOR_NAME
    with pytest.raises(ConfigError, match="folds 1, 10; choose one with --fold"):
        locate_detector(run)
    with pytest.raises(ConfigError, match="no detector for fold 2"):
        locate_detector(run, 2)
