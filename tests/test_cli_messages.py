"""What the CLI says when a run is stopped or a name or value is wrong: Ctrl-C names how to
resume; click's own errors fit 80 columns; a bare loss family or a raw folder gets the fix."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from austack.cli.main import cli


def _interrupt(*args, **kw):
    raise KeyboardInterrupt


@pytest.mark.parametrize("command, target, resume", [
    (["demo", "--quick"], "austack.demo.run_demo", "re-run the same command to resume"),
    (["bench", "test_tiny", "wce", "--data", "x.h5"], "austack.engine.run_and_record",
     "re-run the same command to resume"),
    (["synth", "raw", "--layout", "bp4d"], "austack.cli.synth.synthesize", "nothing was resumed"),
])
def test_ctrl_c_says_how_to_resume_not_aborted(monkeypatch, tmp_path, command, target, resume):
    monkeypatch.setattr(target, _interrupt)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, command)
    assert res.exit_code == 130, res.output
    assert resume in " ".join(res.output.split()) and "Aborted!" not in res.output


@pytest.mark.parametrize("args", [["bench", "--recipe", "zz*", "--data", "x.h5"],
                                  ["prepare", "bp4d", ".", "o.h5", "--landmarks", "nosuch-landmark-mode"],
                                  ["study", "noise", "--out", "o", "--levels", "a,b,c,d,e,f,g,h,i,j,k,l,m"]])
def test_clicks_own_errors_fit_80_columns(args):
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "Error:" in res.output
    assert max(map(len, res.output.splitlines())) <= 80, res.output


def test_clicks_own_line_breaks_are_kept():
    res = CliRunner().invoke(cli, ["synth", "raw"])          # "Choose from:" and one choice a line
    assert res.exit_code == 2 and "\n\tbp4d," in res.output.replace("       \t", "\t")


def test_a_bare_aunce_suggests_the_papers_preset():
    from austack.losses._registry import LOSSES

    message = LOSSES.unknown_message("aunce")
    assert "did you mean 'aunce.paper'?" in message
    from austack.registry import Registry

    family = Registry("thing")
    for name in ("x.a", "x.b", "y"):
        family.register(name)(SimpleNamespace)
    assert "did you mean one of 'x.a', 'x.b'?" in family.unknown_message("x")


def test_bench_on_a_raw_folder_says_prepare_it_first(tmp_path):
    raw = tmp_path / "BP4D"
    raw.mkdir()
    res = CliRunner().invoke(cli, ["bench", "resnet18", "wce", "--data", str(raw), "--device", "cpu"])
    assert res.exit_code == 2 and "Traceback" not in res.output      # a ConfigError: exit 2
    text = " ".join(res.output.split())
    assert "is a folder, not a prepared store" in text and f"austack prepare DATASET {raw} BP4D.h5" in text


def test_an_unmeasured_rate_is_blank_not_a_question_mark():
    from austack.progress import RateColumn

    task = SimpleNamespace(finished_speed=None, speed=None)
    assert RateColumn("steps").render(task).plain == ""
    task.speed = 2.5
    assert RateColumn("steps").render(task).plain == "2.5 steps/s"


def _rendered(progress, console) -> list[str]:
    console.print(progress.make_tasks_table(progress.tasks))
    return console.export_text().splitlines()


def test_predict_and_bench_bars_fit_80_columns_on_one_line():
    import io

    from rich.console import Console

    from austack.progress import BenchView, make_progress

    console = Console(file=io.StringIO(), width=80, force_terminal=True, record=True)
    p = make_progress(console, disable=False, unit="frames")
    task = p.add_task("predict", total=12000, detail="12000 with a face")
    p.update(task, completed=6000)
    p.tasks[0].finished_speed = 1234.5                      # the widest rate a CPU run shows
    (line,) = _rendered(p, console)
    assert "frames/s" in line and "12000 with a face" in line and len(line) <= 80
    view = BenchView(console)
    view.progress.disable = False
    task = view.progress.add_task("fold 3 linear epoch 15/15", total=1500, detail="12345 img/s  loss 0.1234")
    view.progress.update(task, completed=750)
    (line,) = _rendered(view.progress, console)[-1:]
    assert "img/s  loss 0.1234" in line and "?" not in line and len(line) <= 80


def test_all_faces_on_a_large_image_says_which_faces_it_could_not_see():
    import numpy as np

    from austack.inference.faces import MIN_FACE_PX, FaceFinder
    from austack.inference.runner import Tally

    from austack.cli._predict_view import small_face_hint

    finder = FaceFinder(72, 2.0, all_faces=True)
    assert finder(np.full((960, 1280, 3), 128, np.uint8), sequence=0, still=True) == []   # no face in grey
    assert finder.smallest_findable == MIN_FACE_PX * 1280 / 640                      # shrunk by half
    lines = small_face_hint(Tally(smallest_findable=finder.smallest_findable), upsample=0)
    assert "160 px" in lines[0] and "--upsample 1" in lines[1] and all(len(x) <= 80 for x in lines)
    assert small_face_hint(Tally(), upsample=0) == []                                # nothing was shrunk


def test_prepare_passes_reader_options(monkeypatch, tmp_path):
    seen = {}

    def fake_prepare(dataset, raw_dir, out, options, **kw):
        seen.update(vars(options))
        raise KeyboardInterrupt          # stop there: only the options matter here
    monkeypatch.setattr("austack.cli.prepare.prepare", fake_prepare)
    res = CliRunner().invoke(cli, ["prepare", "gft", str(tmp_path), str(tmp_path / "o.h5"),
                                   "--reader-opt", "layout=my.yaml"])
    assert res.exit_code != 0 and seen["reader_options"] == {"layout": "my.yaml"}
