"""pixood-synth: deterministic, correctly labelled synthetic road scenes and a safe CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pixood_ros import durable
from pixood_ros.synth import (
    ANOMALY_SPLITS,
    CLASS_NAMES,
    SPLITS,
    VOID,
    frame_rng,
    render_scene,
    write_dataset,
)
from pixood_ros.synth.classes import Cls
from pixood_ros.synth.cli import main

W, H = 160, 80


def _scene(split: str, index: int = 0, seed: int = 0, w: int = W, h: int = H):
    return render_scene(frame_rng(seed, split, index), w, h, split)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    splits = {"train": 2, "ood_val": 1}
    write_dataset(tmp_path / "a", splits, width=W, height=H, seed=3, progress=False)
    write_dataset(tmp_path / "b", splits, width=W, height=H, seed=3, progress=False)
    write_dataset(tmp_path / "c", splits, width=W, height=H, seed=4, progress=False)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if k.startswith("leftImg8bit")]
    assert all(a[k] != c[k] for k in images)


def test_frame_does_not_depend_on_other_split_counts(tmp_path):
    write_dataset(tmp_path / "a", {"val": 1}, width=W, height=H, seed=1, progress=False)
    write_dataset(tmp_path / "b", {"train": 3, "val": 1}, width=W, height=H, seed=1, progress=False)
    rel = "leftImg8bit/val/synth/val_000000_leftImg8bit.png"
    assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


@pytest.mark.parametrize("split", SPLITS)
def test_value_ranges_and_ood_convention(split):
    for index in range(2):
        s = _scene(split, index)
        assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
        assert s.labels.shape == s.ood.shape == (H, W)
        assert set(np.unique(s.labels)) <= set(range(len(CLASS_NAMES))) | {VOID}
        assert set(np.unique(s.ood)) <= {0, 1, VOID}
        # void labels <-> ood 255 except on anomalies; anomalies carry the void class label
        assert np.array_equal(s.ood == 0, s.labels != VOID)
        assert np.all(s.labels[s.ood == 1] == VOID)
        if split in ANOMALY_SPLITS:
            assert (s.ood == 1).any(), f"{split} frame {index} shows no anomaly"
        else:
            assert not (s.ood == 1).any() and not s.anomalies


@pytest.mark.parametrize("split", sorted(ANOMALY_SPLITS))
def test_ood_pixels_are_exactly_visible_anomaly_pixels(split):
    for index in range(3):
        s = _scene(split, index, w=256, h=128)
        footprint = np.zeros(s.ood.shape, bool)
        for a in s.anomalies:
            footprint |= a.full_mask(*s.ood.shape)
        ood = s.ood == 1
        assert ood.any()
        assert not (ood & ~footprint).any(), "ood==1 outside every placed anomaly"
        # nothing in-distribution is placed in front of an anomaly, so the only footprint pixels
        # that may lose the flag are those under the ego hood (void)
        hidden = footprint & ~ood
        assert np.all(s.ood[hidden] == VOID)
        assert np.all(s.labels[hidden] == VOID)


def test_anomalies_stand_on_the_road():
    """The base of each anomaly touches road pixels in the label map (the row just below it)."""
    checked = 0
    for index in range(6):
        s = _scene("ood_val", index, w=320, h=160)
        for a in s.anomalies:
            m = a.full_mask(*s.labels.shape)
            visible = m & (s.ood == 1)
            if visible.sum() < 10:
                continue
            rows, cols = np.nonzero(m)
            bottom = rows.max()
            if bottom + 2 >= s.labels.shape[0]:
                continue
            below = s.labels[bottom + 2, cols[rows == bottom]]
            below = below[below != VOID]  # hood or another anomaly may sit there
            if below.size:
                assert np.mean(below == Cls.ROAD) >= 0.5, "anomaly does not stand on the road"
            checked += 1
    assert checked >= 3


def test_scale_follows_perspective():
    """Anomalies further away are drawn smaller per metre (pinhole camera)."""
    pairs = []
    for index in range(10):
        for a in _scene("ood_val", index, w=256, h=128).anomalies:
            pairs.append((a.z, a.mask.shape[1] / a.size))
    pairs.sort()
    near, far = pairs[0], pairs[-1]
    assert near[0] < far[0] and near[1] > far[1]


def test_main_classes_appear():
    seen: set[int] = set()
    for index in range(6):
        seen |= set(np.unique(_scene("train", index, w=256, h=128).labels).tolist())
    for cls in (
        Cls.ROAD,
        Cls.SIDEWALK,
        Cls.BUILDING,
        Cls.VEGETATION,
        Cls.SKY,
        Cls.CAR,
        Cls.PERSON,
        Cls.POLE,
    ):
        assert int(cls) in seen, f"{CLASS_NAMES[cls]} never appears"


def test_small_anomalies_are_smaller_than_ood_val():
    def mean_area(split):
        return np.mean([(_scene(split, i, w=256, h=128).ood == 1).sum() for i in range(4)])

    assert mean_area("ood_small") < mean_area("ood_val")


def test_shift_frames_are_darker_or_flatter_than_val():
    def stats(split):
        imgs = [_scene(split, i).image.astype(float) for i in range(6)]
        return np.mean([i.mean() for i in imgs]), np.mean(
            [np.abs(np.diff(i, axis=1)).mean() for i in imgs]
        )

    (b_val, e_val), (b_shift, e_shift) = stats("val"), stats("ood_shift")
    assert b_shift < b_val or e_shift < e_val


def test_cli_writes_layout_and_meta(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(
        [
            str(out),
            "--train",
            "2",
            "--val",
            "1",
            "--ood-val",
            "1",
            "--ood-shift",
            "1",
            "--width",
            str(W),
            "--height",
            str(H),
            "--seed",
            "5",
            "--no-progress",
        ]
    )
    assert rc == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 5 and meta["width"] == W and meta["height"] == H
    assert meta["class_names"] == list(CLASS_NAMES) and meta["complete"] is True
    assert meta["counts"] == {"train": 2, "val": 1, "ood_val": 1, "ood_shift": 1}
    for split, n in meta["counts"].items():
        for i in range(n):
            stem = f"{split}_{i:06d}"
            img = cv2.imread(str(out / "leftImg8bit" / split / "synth" / f"{stem}_leftImg8bit.png"))
            lab = cv2.imread(
                str(out / "gtFine" / split / "synth" / f"{stem}_gtFine_labelTrainIds.png"),
                cv2.IMREAD_UNCHANGED,
            )
            ood = cv2.imread(
                str(out / "ood" / split / "synth" / f"{stem}_ood.png"), cv2.IMREAD_UNCHANGED
            )
            assert img.shape == (H, W, 3) and lab.shape == ood.shape == (H, W)
            assert lab.dtype == ood.dtype == np.uint8
            # PNG round trip == API output (RGB stored as such)
            s = _scene(split, i, seed=5)
            assert np.array_equal(img[..., ::-1], s.image)
            assert np.array_equal(lab, s.labels) and np.array_equal(ood, s.ood)
    assert not (out / "ood" / "ood_small").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--train", "-1"],
        ["--val", "x"],
        ["--width", "0"],
        ["--height", "10"],
        ["--width", "-5"],
        ["--seed", "-1"],
        ["--workers", "0"],
        ["--train", "0", "--val", "0", "--ood-val", "0"],
        ["--bogus"],
    ],
)
def test_cli_bad_options_exit_2_with_one_line(tmp_path, capsys, args):
    assert main([str(tmp_path / "out"), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert not (tmp_path / "out").exists()


def test_cli_protects_foreign_folder_and_reuses_own(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    small = [
        "--train",
        "2",
        "--val",
        "0",
        "--ood-val",
        "0",
        "--width",
        str(W),
        "--height",
        str(H),
        "--no-progress",
    ]
    assert main([str(foreign), *small]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["precious.txt"]
    assert main([str(foreign), *small, "--overwrite"]) == 0
    assert (foreign / "precious.txt").read_text() == "keep me"

    own = tmp_path / "own"
    assert main([str(own), *small]) == 0
    small[1] = "1"  # fewer frames on rerun: stale frames of the old run must go
    assert main([str(own), *small]) == 0
    names = sorted(p.name for p in (own / "leftImg8bit" / "train" / "synth").iterdir())
    assert names == ["train_000000_leftImg8bit.png"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main([str(a_file), *small]) == 2


def test_outputs_replace_symlinks_and_stale_temporaries(tmp_path):
    """meta.json and frame files replace a symlink instead of writing through it; a killed run's
    temporary meta.json is removed."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    root = tmp_path / "data"
    frame = root / "leftImg8bit" / "val" / "synth" / "val_000000_leftImg8bit.png"
    frame.parent.mkdir(parents=True)
    frame.symlink_to(victim)
    (root / "meta.json").symlink_to(victim)
    stale = root / f"{durable.TEMP_PREFIX}99_meta.json"
    stale.write_text("{")
    write_dataset(root, {"val": 1}, width=W, height=H, progress=False, overwrite=True)
    assert victim.read_text() == "keep me" and not stale.exists()
    assert not frame.is_symlink() and cv2.imread(str(frame)).shape == (H, W, 3)
    meta = json.loads((root / "meta.json").read_text())
    assert not (root / "meta.json").is_symlink() and meta["complete"] is True


def test_workers_give_identical_output(tmp_path):
    splits = {"train": 3, "ood_roadlike": 1}
    write_dataset(tmp_path / "a", splits, width=W, height=H, progress=False, workers=1)
    write_dataset(tmp_path / "b", splits, width=W, height=H, progress=False, workers=2)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
