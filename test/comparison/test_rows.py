"""The reproduced comparison's rows carry honest names: road-restricted baselines say so, the
classic all-class MSP / MaxLogit / Energy come from the same files' unknown_score, PixOOD's
published rule and the InternImage-OOD family model appear when their checkpoints exist, and the
default PixOOD row comes first in the generated tables."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from pixood_ros.comparison import reproduce
from pixood_ros.comparison.report import markdown
from pixood_ros.comparison.rows import comparison_rows, legend
from pixood_ros.comparison.run import build_parser

SCORERS = ["pixood", "msp", "maxlogit", "energy", "kmeans"]
ROAD = "(road+sidewalk)"
RESTRICTED = ["PixOOD", "PixOOD (published rule)", f"MSP {ROAD}", f"MaxLogit {ROAD}",
              f"Energy {ROAD}", f"k-means {ROAD}"]  # fmt: skip


def test_rows_are_named_for_what_they_compute(tmp_path):
    rows = comparison_rows(SCORERS, [0, 1], tmp_path / "exp", tmp_path / "m", tmp_path / "ii")
    assert [r.name for r in rows] == [*RESTRICTED, "MSP", "MaxLogit", "Energy",
                                      "InternImage + UperNet, k-means"]  # fmt: skip
    by_name = {r.name: r for r in rows}
    assert by_name["MSP"].onnx == by_name["MSP (road+sidewalk)"].onnx  # no extra export
    assert by_name["MSP"].mode == "unknown" and by_name["MSP (road+sidewalk)"].mode == "eval_labels"
    assert (
        by_name["PixOOD (published rule)"].checkpoint
        == tmp_path / "exp/checkpoints/pixood_published"
    )
    assert (
        by_name["InternImage + UperNet, k-means"].checkpoint == tmp_path / "ii/checkpoints/kmeans"
    )
    every = comparison_rows(SCORERS, list(range(19)), tmp_path, tmp_path)
    assert [r.name for r in every][2:] == ["MSP", "MaxLogit", "Energy", "k-means"]


def _args(tmp_path: Path, config: Path, internimage: Path) -> argparse.Namespace:
    return build_parser().parse_args(
        [
            "--reproduce",
            "--config",
            str(config),
            "--work",
            str(tmp_path / "work"),
            "--experiment",
            str(tmp_path / "exp"),
            "-o",
            str(tmp_path / "out"),
            "--internimage-config",
            str(internimage),
            "--no-progress",
        ]  # fmt: skip
    )


def _config(path: Path, data: Path) -> Path:
    path.write_text(f"data: {{root: {data}}}\ndecide: {{scorers: [pixood, msp]}}\n")
    return path


def test_optional_rows_follow_their_checkpoints(tmp_path, monkeypatch, capsys):
    """pixood_published and the InternImage-OOD checkpoint are written by other training stages:
    absent, their rows are left out (and said so); present, they are exported and compared."""
    monkeypatch.chdir(tmp_path)  # the InternImage experiment is experiments/<config stem>
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: ran.append(cmd)
                        or subprocess.CompletedProcess(cmd, 0))  # fmt: skip
    config = _config(tmp_path / "small.yaml", tmp_path / "data")
    internimage = _config(tmp_path / "synth_internimage.yaml", tmp_path / "data")
    for ckpt in ("exp/checkpoints/pixood", "exp/checkpoints/msp"):
        (tmp_path / ckpt).mkdir(parents=True)
    comparison = reproduce.prepare(_args(tmp_path, config, internimage))
    assert [m.name for m in comparison.models] == ["PixOOD", "MSP (road+sidewalk)", "MSP"]
    assert "no checkpoint" in capsys.readouterr().out
    (tmp_path / "exp/checkpoints/pixood_published").mkdir()
    (tmp_path / "experiments/synth_internimage/checkpoints/kmeans").mkdir(parents=True)
    ran.clear()
    comparison = reproduce.prepare(_args(tmp_path, config, internimage))
    names = [m.name for m in comparison.models]
    assert names == ["PixOOD", "PixOOD (published rule)", "MSP (road+sidewalk)", "MSP",
                     "InternImage + UperNet, k-means"]  # fmt: skip
    exported = [cmd[1] for cmd in ran if Path(cmd[0]).name == "pixood-export"]
    assert str(Path("experiments/synth_internimage/checkpoints/kmeans")) in exported
    assert "'InternImage + UperNet, k-means=" in comparison.chain[-1]


def test_generated_table_lists_the_rows_first_pixood_with_the_legend(tmp_path):
    rows = comparison_rows(SCORERS, [0, 1], tmp_path, tmp_path)
    model = {"provider": "CPU", "scored_pixels": "road", "component_track": "obstacle"}
    values = {r.name: {"frames": 2, "ap": 0.5} for r in rows}
    results = {"command": "c", "created": "t", "data": "d", "splits": ["ood_val"],
               "models": {r.name: model for r in rows}, "results": {"ood_val": values},
               "overall": {r.name: {"mean_ap": 0.5} for r in rows},
               "legend": legend(rows, [0, 1])}  # fmt: skip
    text = markdown(results)
    table = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    shown = [name for name in table if name != "model" and not name.startswith("-")]
    assert shown[: len(rows)] == [r.name for r in rows] and shown[0] == "PixOOD"
    assert "- `MSP`, `MaxLogit`, `Energy`: the classic all-class baselines" in text
    assert "`PixOOD (published rule)`: the paper's decision rule" in text
