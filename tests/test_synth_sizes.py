"""`austack synth --size N` works for every N >= MIN_SIZE (it once crashed at 96)."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli as austack_cli
from austack.synth import MIN_SIZE, _rng
from austack.synth.actions import field_grid, render_frame, smooth_field
from austack.synth.face import HeadPose, make_subject
from austack.synth.layouts.base import ALL_AUS


def test_a_field_box_past_the_grid_is_clipped():
    """A box padded for interpolation may end past the last grid row; only real cells are filled."""
    shape, step = (72, 96), 2.0
    hg, wg = field_grid(shape, step)
    centres = np.array([[10.0, 10.0], [80.0, 15.0], [40.0, 60.0], [90.0, 70.0]])
    values = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 0.0]])
    out = smooth_field(centres, values, shape, step, box=(hg // 2, hg + 1, wg // 4, wg + 2))
    assert out.shape == (hg, wg, 2)
    assert not out[:hg // 2].any() and not out[:, :wg // 4].any() and out[hg // 2:, wg // 4:].any()


# video53_left (seed 0, 96 px) is the Aff-Wild2 subject whose lower-face field box ran one row
# past the grid: "could not broadcast input array from shape (36,47,2) into shape (35,47,2)".
@pytest.mark.parametrize("size", [MIN_SIZE, 128, 200])
def test_subjects_build_and_render_at_small_sizes(size):
    frame_size = (size, int(round(size * 0.75 / 2)) * 2)
    every = np.full(len(ALL_AUS), 3, np.int8)
    for subject_id in ("video53_left", "S01", "F001"):
        face = make_subject(subject_id, _rng(0, "subject", subject_id), frame_size)
        rgb, pts = render_frame(face, every, np.random.default_rng(0), HeadPose())
        assert rgb.shape == (frame_size[1], frame_size[0], 3) and rgb.std() > 5
        assert np.isfinite(pts).all() and (pts >= 0).all() and (pts[:, 0] < size).all()


def test_cli_synth_at_the_minimum_size(tmp_path):
    """The command from the report: Aff-Wild2's default subjects at 96 px."""
    result = CliRunner().invoke(austack_cli, ["synth", str(tmp_path / "a"), "--layout", "affwild2",
                                              "--size", "96", "--frames", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 12 frames (96x72)" in result.output


@pytest.mark.parametrize("layout,args,match", [
    ("bp4d+", ["--sessions", "5"], "bp4d+ codes AUs in 4 tasks; asked for 5: pass --sessions 4 or fewer"),
    ("bp4d", ["--sessions", "9"], "bp4d has 8 tasks; asked for 9: pass --sessions 8 or fewer"),
    ("bp4d", ["--subjects", "42"], "bp4d has 41 subjects; asked for 42: pass --subjects 41 or fewer"),
    ("disfa", ["--subjects", "28"], "disfa has 27 subjects; asked for 28: pass --subjects 27 or fewer"),
    ("gft", ["--subjects", "97"], "gft has 96 subjects; asked for 97: pass --subjects 96 or fewer"),
    ("affwild2", ["--subjects", "500"], "affwild2 synth names 499 videos at most: pass --subjects 499")])
def test_a_plan_the_layout_cannot_hold_is_refused_before_writing(tmp_path, layout, args, match):
    """One line naming the fix, exit 2, no traceback, and DEST is never created."""
    dest = tmp_path / "x"
    result = CliRunner().invoke(austack_cli, ["synth", str(dest), "--layout", layout, "--frames", "1", *args])
    assert result.exit_code == 2 and match in result.output, result.output
    assert "Traceback" not in result.output and not dest.exists()
    assert max(map(len, result.output.splitlines())) <= 80
