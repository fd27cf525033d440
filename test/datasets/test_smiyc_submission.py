"""pixood-smiyc writes the SMIYC toolkit's submission files: one float16 HDF5 map per frame at
anomaly_p/METHOD/SPLIT/FRAME.hdf5, scores in rank-preserving storage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from dataset_fixtures import write_layout
from model_fixtures import make_handmade_model

from pixood_ros.datasets.smiyc_cli import main
from pixood_ros.datasets.smiyc_submission import read_scores
from pixood_ros.metrics.score_storage import from_storage

pytest.importorskip("h5py", reason="SMIYC submission files need h5py")


@pytest.mark.parametrize("name, split", [("smiyc-ra21", "AnomalyTrack-all"),
                                         ("smiyc-ro21", "ObstacleTrack-all")])  # fmt: skip
def test_every_frame_gets_its_score_file(tmp_path, capsys, name, split):
    root, _ = write_layout(tmp_path / "data", name, labelled=2, unlabelled=1)
    model = make_handmade_model(tmp_path / "m.onnx")  # anomaly score = red / 255
    out = tmp_path / "sub"
    argv = [str(model), str(root), "-o", str(out), "--method", "Mine", "--providers", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    folder = out / "anomaly_p" / "Mine" / split
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["test_0002.hdf5", "validation_0000.hdf5",
                                       "validation_0001.hdf5"]  # fmt: skip
    image = next((root / "images").glob("validation_0001.*"))
    red = cv2.imread(str(image))[..., 2].astype(np.float64) / 255.0
    stored = read_scores(folder / "validation_0001.hdf5")
    assert stored.dtype == np.float16 and stored.shape == red.shape
    assert np.allclose(from_storage(stored), red, atol=2e-3)
    order = np.argsort(red.ravel(), kind="stable")
    assert np.all(np.diff(stored.ravel()[order].astype(np.float64)) >= 0)  # ranking kept


def test_fishyscapes_is_refused_in_one_line(tmp_path, capsys):
    root, _ = write_layout(tmp_path / "data", "fishyscapes-lf")
    model = make_handmade_model(tmp_path / "m.onnx")
    assert main([str(model), str(root), "-o", str(tmp_path / "sub"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SMIYC submissions are for RA21 / RO21" in err
