"""Data-set loaders on tiny generated folders: pairing, label mapping, resizing, flips and the
one-line errors a user gets for broken data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixood_training.data import (
    CityscapesDataset,
    DatasetError,
    FolderDataset,
    SynthDataset,
    build_dataset,
    labelids_to_trainids,
    network_size,
)


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _image(h: int = 20, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _labels(h: int = 20, w: int = 40) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[: h // 2] = 10  # sky on top
    labels[h // 2 :, : w // 2] = 0  # road bottom-left
    labels[h // 2 :, w // 2 :] = 255  # void bottom-right
    return labels


def _cityscapes(root: Path, split: str = "train", n: int = 2, kind: str = "trainids") -> Path:
    for i in range(n):
        stem = f"aachen_{i:06d}_000019"
        _png(root / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png", _image(seed=i))
        labels = _labels()
        if kind == "trainids":
            _png(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelTrainIds.png", labels)
        else:  # labelIds: road=7, sky=23, void=0
            ids = np.select([labels == 0, labels == 10], [7, 23], 0).astype(np.uint8)
            _png(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png", ids)
    return root


def _folder(root: Path, n: int = 3, with_ood: bool = False) -> tuple[Path, Path, Path | None]:
    for i in range(n):
        _png(root / "img" / f"f{i}.jpg", _image(seed=i))
        _png(root / "lbl" / f"f{i}.png", _labels())
        if with_ood:
            ood = np.zeros((20, 40), np.uint8)
            ood[12:16, 5:9] = 1
            _png(root / "ood" / f"f{i}.png", ood)
    return root / "img", root / "lbl", (root / "ood" if with_ood else None)


def test_network_size_matches_method_examples():
    assert network_size(1024, 2048, 1792) == (896, 1792)
    assert network_size(1022, 2044, 2044 // 14 * 14) == (1022, 2044)
    assert network_size(1080, 1920, 1918) == (1078, 1918)
    assert network_size(2048, 1024, 1792) == (1792, 896)
    with pytest.raises(ValueError):
        network_size(10, 10, 100)


def test_labelids_are_mapped_to_train_ids():
    ids = np.array([[7, 8, 33, 0], [23, 26, 255, 30]])
    assert labelids_to_trainids(ids).tolist() == [[0, 1, 18, 255], [10, 13, 255, 255]]
    with pytest.raises(ValueError, match="40"):
        labelids_to_trainids(np.array([[40]]))


@pytest.mark.parametrize("kind", ["trainids", "labelids"])
def test_cityscapes_layout_reads_and_resizes(tmp_path, kind):
    root = _cityscapes(tmp_path / "cs", kind=kind)
    ds = CityscapesDataset(root, "train", num_classes=19, long_side=28)
    assert len(ds) == 2
    sample = ds[0]
    assert sample["image"].shape == (3, 14, 28) and sample["image"].dtype == torch.float32
    assert float(sample["image"].min()) >= 0.0 and float(sample["image"].max()) <= 1.0
    assert sample["label"].dtype == torch.long and sample["label"].shape == (14, 28)
    assert set(sample["label"].unique().tolist()) == {0, 10, 255}
    assert sample["label"][0, 0] == 10 and sample["label"][-1, 0] == 0
    assert "ood" not in sample


def test_unresized_sample_is_original_uint8(tmp_path):
    root = _cityscapes(tmp_path / "cs")
    ds = CityscapesDataset(root, "train", num_classes=19, resize=False)
    sample = ds[1]
    assert sample["image"].dtype == torch.uint8 and sample["image"].shape == (20, 40, 3)
    assert np.array_equal(sample["image"].numpy(), _image(seed=1))


def test_hflip_flips_image_and_label_together_and_is_deterministic(tmp_path):
    img_dir, lbl_dir, _ = _folder(tmp_path)
    plain = FolderDataset(img_dir, lbl_dir, num_classes=19, size=(14, 28))
    flipping = FolderDataset(img_dir, lbl_dir, num_classes=19, size=(14, 28), hflip=True, seed=3)
    flipped_any = False
    for epoch in range(4):
        flipping.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], flipping[i]
            if torch.equal(a["label"], b["label"]):
                assert torch.equal(a["image"], b["image"])
            else:
                flipped_any = True
                assert torch.equal(a["label"].flip(-1), b["label"])
                assert torch.allclose(a["image"].flip(-1), b["image"])
            assert torch.equal(b["label"], flipping[i]["label"])  # same decision on re-read
    assert flipped_any


def test_folder_with_ood_masks(tmp_path):
    img_dir, lbl_dir, ood_dir = _folder(tmp_path, with_ood=True)
    ds = FolderDataset(img_dir, lbl_dir, ood_dir, num_classes=19, size=(28, 42))
    sample = ds[2]
    assert sample["ood"].shape == (28, 42) and int(sample["ood"].sum()) > 0


def test_synth_layout_uses_ood_masks_when_present(tmp_path):
    root = _cityscapes(tmp_path / "syn", split="ood_val")
    for img in (root / "leftImg8bit" / "ood_val" / "aachen").iterdir():
        stem = img.name[: -len("_leftImg8bit.png")]
        _png(root / "ood" / "ood_val" / "aachen" / f"{stem}_ood.png", np.zeros((20, 40), np.uint8))
    (root / "meta.json").write_text('{"class_names": ["road"]}')
    cfg = {"kind": "synth", "root": str(root), "splits": {"ood": "ood_val"}, "long_side": 28}
    ds = build_dataset(cfg, "ood")
    assert isinstance(ds, SynthDataset) and ds.has_ood and "ood" in ds[0]


# --- clear errors ---------------------------------------------------------------------------


def test_missing_label_file_is_named(tmp_path):
    img_dir, lbl_dir, _ = _folder(tmp_path)
    (lbl_dir / "f1.png").unlink()
    with pytest.raises(DatasetError, match=r"missing label file .*f1\.jpg.*lbl/f1\.png"):
        FolderDataset(img_dir, lbl_dir, num_classes=19, size=(14, 28))


def test_missing_cityscapes_label_is_named(tmp_path):
    root = _cityscapes(tmp_path / "cs")
    victim = next((root / "gtFine" / "train" / "aachen").iterdir())
    victim.unlink()
    with pytest.raises(DatasetError, match=victim.name.split("_gtFine")[0]):
        CityscapesDataset(root, "train", num_classes=19, long_side=28)


def test_orphan_label_is_an_error(tmp_path):
    img_dir, lbl_dir, _ = _folder(tmp_path)
    _png(lbl_dir / "stray.png", _labels())
    with pytest.raises(DatasetError, match=r"stray\.png has no image"):
        FolderDataset(img_dir, lbl_dir, num_classes=19, size=(14, 28))


def test_size_mismatch_names_both_files(tmp_path):
    img_dir, lbl_dir, _ = _folder(tmp_path)
    _png(lbl_dir / "f0.png", np.zeros((10, 40), np.uint8))
    ds = FolderDataset(img_dir, lbl_dir, num_classes=19, size=(14, 28))
    ds[1]  # the others are fine
    with pytest.raises(DatasetError, match=r"f0\.png is 40x10 but image .*f0\.jpg is 40x20"):
        ds[0]


def test_out_of_range_labels_are_reported(tmp_path):
    img_dir, lbl_dir, _ = _folder(tmp_path)
    bad = _labels()
    bad[0, 0] = 19
    _png(lbl_dir / "f2.png", bad)
    ds = FolderDataset(img_dir, lbl_dir, num_classes=19, size=(14, 28))
    with pytest.raises(DatasetError, match=r"f2\.png has values \[19\] outside 0\.\.18"):
        ds.check()


def test_bad_ood_values_and_unreadable_image(tmp_path):
    img_dir, lbl_dir, ood_dir = _folder(tmp_path, with_ood=True)
    _png(ood_dir / "f0.png", np.full((20, 40), 7, np.uint8))
    (img_dir / "f1.jpg").write_bytes(b"not an image")
    ds = FolderDataset(img_dir, lbl_dir, ood_dir, num_classes=19, size=(14, 28))
    with pytest.raises(DatasetError, match=r"OOD mask .*f0\.png has values \[7\]"):
        ds[0]
    with pytest.raises(DatasetError, match=r"cannot read image .*f1\.jpg"):
        ds[1]


def test_build_dataset_config_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        missing = str(tmp_path / "nope")
        cfg = {"kind": "cityscapes", "root": missing, "splits": {"train": "train"}, "long_side": 28}
        build_dataset(cfg, "train")
    with pytest.raises(DatasetError, match="data.kind"):
        build_dataset({"kind": "coco", "splits": {"train": "x"}}, "train")
    with pytest.raises(DatasetError, match="no 'val' entry"):
        build_dataset({"kind": "synth", "root": str(tmp_path), "splits": {}}, "val")
    with pytest.raises(DatasetError, match="multiples of 14"):
        img_dir, lbl_dir, _ = _folder(tmp_path)
        split = {"images": str(img_dir), "labels": str(lbl_dir)}
        build_dataset({"kind": "folder", "size": [15, 28], "splits": {"train": split}}, "train")
