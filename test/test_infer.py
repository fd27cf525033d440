"""pixood-infer: folders, single images and videos produce score maps, masks, semantic maps and an
overlay video with the values the model computes; user mistakes exit 2 with one line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from model_fixtures import CITYSCAPES_PALETTE, handmade_expected, make_handmade_model

from pixood_ros.infer import main as infer_main
from pixood_ros.render.pictures import colorize_semantic, overlay_anomalies, side_by_side, turbo


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_handmade_model(tmp_path_factory.mktemp("model") / "handmade.onnx")


def gradient_image(height: int, width: int, seed: int) -> np.ndarray:
    """Red rises left to right (so the handmade anomaly score does), green varies with seed."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[..., 1] = rng.integers(0, 256, (height, 1), dtype=np.uint8)
    image[..., 2] = 77
    return image


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        image = gradient_image(24, 40, index)
        cv2.imwrite(str(folder / f"img_{index}.png"), image[..., ::-1])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_writes_scores_masks_semantic_and_video(model, image_folder, tmp_path):
    out = tmp_path / "out"
    code = infer_main(
        [str(model), str(image_folder), "-o", str(out), "--save", "both", "--video",
         "--threshold", "0.5", "-q"]
    )  # fmt: skip
    assert code == 0
    for index in range(3):
        image = gradient_image(24, 40, index)
        anomaly, semantic, _ = handmade_expected(image)
        png = cv2.imread(str(out / "anomaly" / f"img_{index}.png"), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16 and png.shape == (24, 40)
        np.testing.assert_allclose(png / 65535.0, anomaly, atol=1 / 65535)
        np.testing.assert_array_equal(np.load(out / "anomaly" / f"img_{index}.npy"), anomaly)
        mask = cv2.imread(str(out / "mask" / f"img_{index}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(mask, np.where(anomaly >= 0.5, 255, 0))
        semantic_png = cv2.imread(str(out / "semantic" / f"img_{index}.png"))[..., ::-1]
        np.testing.assert_array_equal(semantic_png, colorize_semantic(semantic, CITYSCAPES_PALETTE))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["provider"] == "CPUExecutionProvider"
    capture = cv2.VideoCapture(str(out / "overlay.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 3 * 40


def test_video_input_and_single_image(model, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (40, 24))
    for index in range(4):
        writer.write(gradient_image(24, 40, index)[..., ::-1])
    writer.release()
    out = tmp_path / "video_out"
    assert infer_main([str(model), str(video), "-o", str(out), "--save", "npy", "-q"]) == 0
    names = sorted(p.name for p in (out / "anomaly").iterdir())
    assert names == [f"frame_{i:06d}.npy" for i in range(4)]
    score = np.load(out / "anomaly" / "frame_000002.npy")
    # MJPG is lossy: compare with the left-to-right ramp of the red channel, loosely.
    assert score[:, 0].mean() < 0.1 and score[:, -1].mean() > 0.9

    image = tmp_path / "one.png"
    cv2.imwrite(str(image), gradient_image(24, 40, 9)[..., ::-1])
    single = tmp_path / "single_out"
    assert infer_main([str(model), str(image), "-o", str(single), "-q"]) == 0
    assert (single / "anomaly" / "one.png").is_file()
    assert json.loads((single / "summary.json").read_text())["frames"] == 1


def test_every_image_kind_is_read_and_unreadable_ones_are_skipped(model, tmp_path):
    """The suffixes of pixood_ros.frames (pixood-make-bag reads the same), e.g. .ppm; a broken
    file is named in summary.json and the rest is processed."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.ppm"), gradient_image(24, 40, 1)[..., ::-1])
    (folder / "b.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert infer_main([str(model), str(folder), "-o", str(out), "-q", "--limit", "5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1 and summary["skipped"] == ["b"]
    assert [f["name"] for f in summary["per_frame"]] == ["a"]
    assert (out / "mask" / "a.png").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{model}", "{missing}"], "input not found"),
        (["{missing}", "{folder}"], "model file not found"),
        (["{model}", "{folder}", "--threshold", "1.5"], "--threshold: must be in [0, 1]"),
        (["{model}", "{folder}", "--limit", "0"], "--limit: must be >= 1"),
        (["{model}", "{folder}", "--fps", "0"], "--fps must be positive"),
        (["{model}", "{empty}"], "no images"),
        (["{notes}", "{folder}"], "cannot load as an ONNX model"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(model, image_folder, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    names = {
        "model": model,
        "missing": tmp_path / "absent",
        "folder": image_folder,
        "empty": tmp_path / "empty",
        "notes": image_folder / "notes.txt",
    }
    argv = [a.format(**names) for a in argv] + ["-o", str(tmp_path / "out"), "-q"]
    assert infer_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_overlay_follows_plot_py_and_frames_have_even_size():
    image = np.full((50, 60, 3), 100, np.uint8)
    score = np.zeros((50, 60), np.float32)
    score[30:, 40:] = 0.9
    semantic = np.zeros((50, 60), np.uint8)
    out = overlay_anomalies(image, score, 0.5, semantic, CITYSCAPES_PALETTE)
    expected = np.clip(0.3 * 100 + 0.7 * turbo(np.array([[0.9]]))[0, 0] + 0.5, 0, 255)
    np.testing.assert_array_equal(out[40, 50], expected.astype(np.uint8))
    np.testing.assert_array_equal(out[20, 30], image[20, 30])  # below threshold: untouched
    np.testing.assert_array_equal(out[2, 2], CITYSCAPES_PALETTE[0])  # semantic inset
    frame = side_by_side(image[:49, :59], score[:49, :59], semantic[:49, :59],
                         CITYSCAPES_PALETTE, 0.5, max_width=100)  # fmt: skip
    assert frame.shape[1] <= 100 and frame.shape[0] % 2 == 0 and frame.shape[1] % 2 == 0
