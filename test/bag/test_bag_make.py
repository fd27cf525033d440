"""pixood-make-bag: image folders, videos and synthetic splits become rosbag2 bags that rosbags
(and so `ros2 bag play`) reads back with the right topics, types, counts, stamps and pixels."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from pixood_ros.bag import bagio
from pixood_ros.bag.make_bag import main

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)  # what a Humble user's tools would use
H, W = 24, 32


def write_frames(folder: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """PNG frames (RGB returned) plus nothing else; deterministic."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        frames.append(rgb)
    return frames


def write_masks(folder: Path, count: int, suffix: str = "_ood", shape=(H, W)) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    masks = []
    for i in range(count):
        mask = np.zeros(shape, np.uint8)
        mask[2 + i : 8 + i, 4:12] = 1
        mask[-2:] = 255
        cv2.imwrite(str(folder / f"frame_{i:03d}{suffix}.png"), mask)
        masks.append(mask)
    return masks


def read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic ▶ [(bag time, message)] read with plain rosbags."""
    out: dict[str, list[tuple[int, object]]] = {}
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    out["__types__"] = types  # type: ignore[assignment]
    return out


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_raw_bag_round_trip(tmp_path, storage, encoding):
    frames = write_frames(tmp_path / "img", 4)
    masks = write_masks(tmp_path / "gt", 4)
    bag = tmp_path / "bag"
    rc = main(
        [str(tmp_path / "img"), "-o", str(bag), "--gt", str(tmp_path / "gt"), "--storage", storage,
         "--encoding", encoding, "--rate", "4", "--start-time", "1000.5", "--frame-id", "cam0",
         "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    assert (bag / "metadata.yaml").is_file()
    assert any(bag.glob("*.db3" if storage == "sqlite3" else "*.mcap"))
    content = read_bag(bag)
    assert content["__types__"] == {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        "/camera/anomaly_gt": "sensor_msgs/msg/Image",
    }
    images, gts = content["/camera/image_raw"], content["/camera/anomaly_gt"]
    assert len(images) == len(gts) == 4
    expected_stamps = [1_000_500_000_000 + i * 250_000_000 for i in range(4)]
    assert [stamp_ns(m) for _, m in images] == expected_stamps
    assert [stamp_ns(m) for _, m in gts] == expected_stamps
    assert [t for t, _ in images] == expected_stamps  # bag (receive) time = header stamp
    for (_, msg), (_, gt), rgb, mask in zip(images, gts, frames, masks, strict=True):
        assert msg.header.frame_id == gt.header.frame_id == "cam0"
        assert msg.encoding == encoding and (msg.height, msg.width, msg.step) == (H, W, 3 * W)
        pixels = msg.data.reshape(H, W, 3)
        assert np.array_equal(pixels, rgb if encoding == "rgb8" else rgb[..., ::-1])
        assert gt.encoding == "mono8"
        assert np.array_equal(gt.data.reshape(H, W), mask)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_bag_round_trip(tmp_path, storage, fmt):
    frames = write_frames(tmp_path / "img", 3, seed=1)
    # smooth frames so JPEG stays close to the original
    for i, rgb in enumerate(frames):
        frames[i] = cv2.GaussianBlur(rgb, (7, 7), 3)
        cv2.imwrite(str(tmp_path / "img" / f"frame_{i:03d}.png"), frames[i][..., ::-1])
    bag = tmp_path / "bag"
    rc = main(
        [str(tmp_path / "img"), "-o", str(bag), "--storage", storage, "--compressed", fmt,
         "--start-time", "5", "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    content = read_bag(bag)
    assert content["__types__"] == {
        "/camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage"
    }
    messages = content["/camera/image_raw/compressed"]
    assert [stamp_ns(m) for _, m in messages] == [5_000_000_000 + i * 100_000_000 for i in range(3)]
    for (_, msg), rgb in zip(messages, frames, strict=True):
        assert fmt in msg.format
        decoded = cv2.imdecode(msg.data, cv2.IMREAD_COLOR)[..., ::-1]
        if fmt == "png":
            assert np.array_equal(decoded, rgb)
        else:
            assert np.abs(decoded.astype(int) - rgb).mean() < 4


def test_gt_paired_by_stem_not_order(tmp_path):
    """Label files named after their frames are paired by name even if they sort differently."""
    frames = write_frames(tmp_path / "img", 2)
    (tmp_path / "gt").mkdir()
    masks = []
    for i, name in enumerate(["frame_000", "frame_001"]):
        mask = np.full((H, W), i, np.uint8)  # frame 0 all normal, frame 1 all anomaly
        # "a_" prefix would reverse the sorted order if pairing went by order
        cv2.imwrite(str(tmp_path / "gt" / f"{name}_gtFine_labelTrainIds.png"), mask)
        masks.append(mask)
    assert main([str(tmp_path / "img"), "-o", str(tmp_path / "bag"), "--semantic-gt",
                 str(tmp_path / "gt"), "--no-progress"]) == 0  # fmt: skip
    sem = read_bag(tmp_path / "bag")["/camera/semantic_gt"]
    assert [int(m.data.max()) for _, m in sem] == [0, 1]
    assert len(frames) == len(sem)


def test_video_input_uses_its_frame_rate_and_limit(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (W, H))
    assert writer.isOpened()
    for i in range(6):
        writer.write(np.full((H, W, 3), 40 * i, np.uint8))
    writer.release()
    bag = tmp_path / "bag"
    assert main([str(video), "-o", str(bag), "--limit", "4", "--start-time", "0",
                 "--no-progress"]) == 0  # fmt: skip
    images = read_bag(bag)["/camera/image_raw"]
    assert [stamp_ns(m) for _, m in images] == [0, 200_000_000, 400_000_000, 600_000_000]
    assert [int(np.median(m.data)) for _, m in images] == pytest.approx([0, 40, 80, 120], abs=3)


def make_synth_layout(root: Path, split: str, count: int) -> None:
    """The pixood-synth layout of docs/architecture.md §7.1, built by hand (tiny)."""
    rng = np.random.default_rng(3)
    for kind in ("leftImg8bit", "gtFine", "ood"):
        (root / kind / split / "synth").mkdir(parents=True)
    for i in range(count):
        stem = f"{split}_{i:04d}"
        rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "leftImg8bit" / split / "synth" / f"{stem}_leftImg8bit.png"), rgb)
        labels = rng.integers(0, 19, (H, W), dtype=np.uint8)
        cv2.imwrite(
            str(root / "gtFine" / split / "synth" / f"{stem}_gtFine_labelTrainIds.png"), labels
        )
        ood = (rng.random((H, W)) < 0.1).astype(np.uint8)
        cv2.imwrite(str(root / "ood" / split / "synth" / f"{stem}_ood.png"), ood)
    (root / "meta.json").write_text(json.dumps({"splits": {split: count}}))


def test_synth_split_becomes_bag_with_both_ground_truths(tmp_path):
    make_synth_layout(tmp_path / "synth", "ood_val", 3)
    bag = tmp_path / "bag"
    assert main(["--synth", str(tmp_path / "synth"), "--split", "ood_val", "-o", str(bag),
                 "--storage", "mcap", "--no-progress"]) == 0  # fmt: skip
    content = read_bag(bag)
    assert set(content["__types__"]) == {
        "/camera/image_raw",
        "/camera/anomaly_gt",
        "/camera/semantic_gt",
    }
    assert all(len(content[t]) == 3 for t in content["__types__"])
    expected = cv2.imread(
        str(tmp_path / "synth/ood/ood_val/synth/ood_val_0001_ood.png"), cv2.IMREAD_UNCHANGED
    )
    assert np.array_equal(content["/camera/anomaly_gt"][1][1].data.reshape(H, W), expected)


def test_synth_unknown_split_lists_the_splits(tmp_path, capsys):
    make_synth_layout(tmp_path / "synth", "ood_val", 1)
    rc = main(["--synth", str(tmp_path / "synth"), "--split", "nope", "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "nope" in err and "ood_val" in err


def test_real_synth_data_set(tmp_path):
    synth = pytest.importorskip("pixood_ros.synth")
    if not hasattr(synth, "write_dataset"):
        pytest.skip("pixood_ros.synth.write_dataset not available yet (synth area)")
    synth.write_dataset(tmp_path / "synth", {"ood_val": 2}, width=64, height=32, progress=False)
    bag = tmp_path / "bag"
    assert main(["--synth", str(tmp_path / "synth"), "-o", str(bag), "--no-progress"]) == 0
    content = read_bag(bag)
    assert len(content["/camera/image_raw"]) == len(content["/camera/anomaly_gt"]) == 2
    assert content["/camera/image_raw"][0][1].width == 64


def test_refuses_to_overwrite_unless_asked(tmp_path, capsys):
    write_frames(tmp_path / "img", 2)
    bag = tmp_path / "bag"
    args = [str(tmp_path / "img"), "-o", str(bag), "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--limit", "1"]) == 0
    assert len(read_bag(bag)["/camera/image_raw"]) == 1
    # something that is not a bag is never deleted
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main([str(tmp_path / "img"), "-o", str(precious), "--overwrite"]) == 2
    assert (precious / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "make_problem, expected",
    [
        (lambda tmp: [str(tmp / "missing")], "input not found"),
        (lambda tmp: [str(tmp / "img"), "--gt", str(tmp / "nogt")], "--gt folder not found"),
        (lambda tmp: [str(tmp / "img"), "--rate", "0"], "--rate: must be > 0"),
        (lambda tmp: [str(tmp / "img"), "--rate", "nan"], "--rate: must be a finite number"),
        (lambda tmp: [str(tmp / "img"), "--rate", "inf"], "--rate: must be a finite number"),
        (lambda tmp: [str(tmp / "img"), "--start-time", "nan"], "must be a finite number"),
        (lambda tmp: [str(tmp / "img"), "--topic", "../x"], "not a valid ROS 2 topic name"),
        (lambda tmp: [str(tmp / "img"), "--gt-topic", "a//b"], "not a valid ROS 2 topic name"),
        (lambda tmp: [str(tmp / "img"), "--semantic-gt-topic", "/9"], "not a valid ROS 2"),
        (lambda tmp: [str(tmp / "img"), "--gt", str(tmp / "small")], "is 16x12 but its frame"),
        (lambda tmp: [str(tmp / "img"), "--gt", str(tmp / "badvalues")], "values [7]"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_leave_no_bag(tmp_path, capsys, make_problem, expected):
    write_frames(tmp_path / "img", 2)
    write_masks(tmp_path / "small", 2, shape=(12, 16))
    (tmp_path / "badvalues").mkdir()
    for i in range(2):
        seven = np.full((H, W), 7, np.uint8)
        cv2.imwrite(str(tmp_path / "badvalues" / f"frame_{i:03d}.png"), seven)
    bag = tmp_path / "bag"
    rc = main([*make_problem(tmp_path), "-o", str(bag), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("pixood-make-bag: error:")
    assert expected in err
    assert not bag.exists()


def test_help_explains_every_option(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    options = "--gt --synth --rate --storage --compressed --topic --gt-topic --frame-id"
    for option in [*options.split(), "--start-time", "--limit", "--overwrite"]:
        assert option in text


@pytest.mark.parametrize(
    ("action", "code", "message"),
    [
        (lambda: os.kill(os.getpid(), signal.SIGINT), 130, "interrupted (Ctrl-C)"),
        (lambda: os.kill(os.getpid(), signal.SIGTERM), 143, "terminated (SIGTERM)"),
        ("disk full", 1, "No space left on device"),
    ],
)
def test_interrupted_or_failed_write_leaves_no_bag(
    tmp_path, capsys, monkeypatch, action, code, message
):
    write_frames(tmp_path / "img", 4)
    original, calls = bagio.serialize, []

    def serialize(msg):
        calls.append(1)
        if len(calls) == 3:
            if action == "disk full":
                raise OSError(errno.ENOSPC, "No space left on device")
            action()
        return original(msg)

    monkeypatch.setattr(bagio, "serialize", serialize)
    bag = tmp_path / "bag"
    rc = main([str(tmp_path / "img"), "-o", str(bag), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == code and len(err.splitlines()) == 1 and message in err, err
    assert not bag.exists()


def test_output_is_never_replaced_through_a_symlink_or_into_a_locked_folder(tmp_path, capsys):
    write_frames(tmp_path / "img", 1)
    real = tmp_path / "real"
    assert main([str(tmp_path / "img"), "-o", str(real), "--no-progress"]) == 0
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert main([str(tmp_path / "img"), "-o", str(link), "--overwrite", "--no-progress"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert (real / "metadata.yaml").is_file()
    assert main([str(tmp_path / "img"), "-o", str(tmp_path / "new/bag"), "--no-progress"]) == 0
    not_a_folder = tmp_path / "img" / "frame_000.png" / "bag"
    assert main([str(tmp_path / "img"), "-o", str(not_a_folder), "--no-progress"]) == 2
    assert "not a writable folder" in capsys.readouterr().err
