"""The reproduction lock: written from the environment's dependency closure, read back, and
compared with the installed packages the way the demo reports it."""
from __future__ import annotations

import tomllib
from pathlib import Path

from austack import lock

ROOT = Path(__file__).resolve().parent.parent


def test_the_closure_holds_the_dependencies_and_test_extras_but_not_austack():
    found = lock.closure()
    for name in ("torch", "torchvision", "timm", "numpy", "opencv-python-headless", "pytest", "dask"):
        assert name in found
    assert "austack" not in found and "pip" not in found


def test_written_lock_reads_back_without_local_labels(tmp_path):
    path = tmp_path / "reproduce.txt"
    path.write_text(lock.lock_text({"torch": "2.14.1+cu130", "numpy": "2.4.6"}), encoding="utf-8")
    assert lock.read_lock(path) == {"torch": "2.14.1", "numpy": "2.4.6"}
    assert lock.read_lock(tmp_path / "none.txt") == {}


def test_differences_name_each_package_that_moved():
    pinned = {"torch": "2.14.1", "opencv-python-headless": "5.0.0.93"}
    diff = lock.differences({"torch": "2.14.1+cpu", "opencv": "5.1.0.95", "h5py": "3.16.0"}, pinned)
    assert diff == {"opencv": {"installed": "5.1.0.95", "lock": "5.0.0.93"},
                    "h5py": {"installed": "3.16.0", "lock": None}}


def test_environment_report_says_whether_to_expect_the_readme_digits(tmp_path):
    same = tmp_path / "same.txt"
    same.write_text(lock.lock_text({lock.KEY_PACKAGES[k]: v for k, v in lock.key_versions().items() if v}))
    report = lock.environment_report(same)
    assert report["matches_lock"] and report["differs"] == {}
    assert set(report["versions"]) == set(lock.KEY_PACKAGES)
    other = tmp_path / "other.txt"
    other.write_text(same.read_text().replace(f"numpy=={report['versions']['numpy']}", "numpy==1.0.0"))
    moved = lock.environment_report(other)
    assert not moved["matches_lock"] and set(moved["differs"]) == {"numpy"}
    for r in (report, moved, lock.environment_report(tmp_path / "none.txt")):
        assert all(len(line) <= 80 for line in lock.describe(r))


def test_check_mode_exits_1_on_a_difference(tmp_path, capsys):
    path = tmp_path / "lock.txt"
    assert lock.main(["--out", str(path)]) == 0 and lock.main(["--out", str(path), "--check"]) == 0
    path.write_text(path.read_text().replace("numpy==", "numpy==0.0.1.dev0+"))
    assert lock.main(["--out", str(path), "--check"]) == 1
    assert "numpy" in capsys.readouterr().out


def test_the_shipped_lock_pins_torch_and_pyproject_takes_ranges():
    pinned = lock.read_lock(lock.LOCK)
    assert pinned["torch"] == "2.14.1" and pinned["torchvision"] == "0.29.1"
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        if dep.startswith(("torch", "torchvision")):
            assert ">=" in dep and "==" not in dep
