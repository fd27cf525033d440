"""pixood-bravo: submission files a BRAVO toolkit accepts (names, bit depth, ids, size), the
InternImage-OOD confidence rule, evaluation numbers equal to `pixood_ros.metrics` computed
directly, and one-line exit-2 errors for user mistakes."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from model_fixtures import handmade_expected, make_foreign_model, make_handmade_model

from pixood_ros.anomaly_modes import DEFAULT_ANOMALY_MODE, anomaly_map
from pixood_ros.bravo.cli import main
from pixood_ros.bravo.submission import evaluate_submission
from pixood_ros.engine import SegmentationResult
from pixood_ros.metrics.bravo import BravoSubsetAccumulator, summarize
from pixood_ros.synth import write_dataset
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

SPLITS = {"val": 2, "ood_val": 2, "ood_shift": 1}
WIDTH, HEIGHT = 64, 32
CPU = ["--providers", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Handmade model, a tiny pixood-synth set and its submissions under both confidence rules."""
    root = tmp_path_factory.mktemp("bravo")
    model = make_handmade_model(root / "model.onnx")
    synth = root / "synth"
    write_dataset(synth, SPLITS, width=WIDTH, height=HEIGHT, seed=3, progress=False)
    for rule in ("scorer", "internimage"):
        args = ["predict", str(model), str(synth), "-o", str(root / rule), "--confidence", rule]
        assert main(args + CPU) == 0
    return root, model, synth


def _synth_images(synth):
    return sorted((synth / "leftImg8bit").glob("*/synth/*_leftImg8bit.png"))


def _pair(sub, synth, image):
    rel = image.relative_to(synth)
    folder = sub / rel.parent
    return folder / f"{rel.stem}_pred.png", folder / f"{rel.stem}_conf.png"


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_predict_writes_one_bravo_pair_per_image(work):
    root, _, synth = work
    images = _synth_images(synth)
    assert len(images) == sum(SPLITS.values())
    written = sorted(p.relative_to(root / "scorer") for p in (root / "scorer").rglob("*.png"))
    expected = sorted(
        p.relative_to(root / "scorer") for img in images for p in _pair(root / "scorer", synth, img)
    )
    assert written == expected
    for image in images:
        rgb = _rgb(image)
        pred_path, conf_path = _pair(root / "scorer", synth, image)
        pred = cv2.imread(str(pred_path), cv2.IMREAD_UNCHANGED)
        conf = cv2.imread(str(conf_path), cv2.IMREAD_UNCHANGED)
        assert pred.dtype == np.uint8 and pred.shape == rgb.shape[:2] == (HEIGHT, WIDTH)
        assert conf.dtype == np.uint16 and conf.shape == rgb.shape[:2]
        assert pred.max() <= 18
        _, semantic, confidence = handmade_expected(rgb)
        np.testing.assert_array_equal(pred, semantic)
        want = np.round(confidence.astype(np.float64) * 65535)
        assert np.abs(conf.astype(np.int64) - want).max() <= 1


def test_internimage_rule_lowers_confidence_exactly_on_flagged_pixels(work):
    root, _, synth = work
    seen_flagged = seen_kept = 0
    for image in _synth_images(synth):
        anomaly, semantic, confidence = handmade_expected(_rgb(image))
        raw = SegmentationResult(anomaly, semantic, confidence)
        flagged = anomaly_map(raw, DEFAULT_ANOMALY_MODE, (0, 1)) >= DEFAULT_ANOMALY_THRESHOLD
        scorer = cv2.imread(str(_pair(root / "scorer", synth, image)[1]), cv2.IMREAD_UNCHANGED)
        rule = cv2.imread(str(_pair(root / "internimage", synth, image)[1]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(rule[~flagged], scorer[~flagged])
        np.testing.assert_array_equal(rule[flagged], np.minimum(scorer[flagged], 6))
        np.testing.assert_array_equal(rule != scorer, flagged & (scorer > 6))
        seen_flagged += int(flagged.sum())
        seen_kept += int((~flagged).sum())
    assert seen_flagged > 0 and seen_kept > 0


def test_unknown_mode_needs_the_unknown_output(work, tmp_path, capsys):
    _, model, synth = work
    argv = ["predict", str(model), str(synth), "-o", str(tmp_path / "s"), "--anomaly-mode"]
    assert main([*argv, "unknown", *CPU]) == 2
    err = capsys.readouterr().err.strip()
    assert "re-export it with pixood-export" in err and len(err.splitlines()) == 1


def _direct_synth_results(synth, sub):
    """The metrics of pixood_ros.metrics, fed by hand: anomaly pixels (void in gtFine) are the
    invalid pixels with a non-void stand-in id so BRAVO's sampling includes them."""
    accs = {}
    for gt_path in sorted((synth / "gtFine").glob("*/synth/*_gtFine_labelTrainIds.png")):
        split, stem = gt_path.parent.parent.name, gt_path.name[: -len("_gtFine_labelTrainIds.png")]
        labels = cv2.imread(str(gt_path), cv2.IMREAD_UNCHANGED)
        ood = cv2.imread(str(synth / "ood" / split / "synth" / f"{stem}_ood.png"), -1)
        gt = np.where(ood == 1, 0, labels).astype(np.uint8)
        gt[ood == 255] = 255
        folder = sub / "leftImg8bit" / split / "synth"
        pred = cv2.imread(str(folder / f"{stem}_leftImg8bit_pred.png"), cv2.IMREAD_UNCHANGED)
        conf = cv2.imread(str(folder / f"{stem}_leftImg8bit_conf.png"), cv2.IMREAD_UNCHANGED)
        acc = accs.setdefault(split, BravoSubsetAccumulator(semantic=True, ood=split != "val"))
        acc.update(gt, pred, conf, (ood == 1).astype(np.uint8))
    results = {f"{s}_{k}": v for s, acc in accs.items() for k, v in acc.compute().items()}
    results.update(summarize(results, subsets=list(accs)))
    return results


def test_evaluate_synth_breakdown_equals_direct_metrics(work, tmp_path, capsys):
    root, _, synth = work
    sub = root / "internimage"
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    capsys.readouterr()
    args = ["evaluate", str(synth), str(sub), "--json", str(out_json), "--markdown", str(out_md)]
    assert main(args + ["--no-progress"]) == 0
    table = capsys.readouterr().out
    direct = _direct_synth_results(synth, sub)
    report = json.loads(out_json.read_text())
    assert report["layout"] == "synth" and list(report["subsets"]) == [
        "val",
        "ood_val",
        "ood_shift",
    ]
    assert "auroc_ood" not in report["subsets"]["val"]  # in-distribution: semantic only
    for key, value in direct.items():
        got = report["results"][key]
        if isinstance(value, list):
            assert got == [None if np.isnan(v) else pytest.approx(v) for v in value]
        else:
            assert got == pytest.approx(value), key
    for key in ("semantic_hmean", "ood_hmean", "bravo_index"):
        assert report[key] == pytest.approx(direct[key])
    markdown = out_md.read_text()
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    for split in SPLITS:
        assert f"{direct[f'{split}_miou_valid']:.4f}" in rows[split]
        assert f"| {split} |" in markdown
    assert f"{direct['ood_val_auroc_ood']:.4f}" in rows["ood_val"]
    assert re.search(rf"BRAVO Index \(hmean of both\) +{direct['bravo_index']:.4f}", table)
    assert re.search(rf"OOD score .* +{direct['ood_hmean']:.4f}", table)
    assert f"{direct['ood_hmean']:.4f}" in markdown


def test_evaluate_synth_index_of_a_good_submission_equals_direct_metrics(work, tmp_path, capsys):
    """A submission that is mostly right, less confident where wrong and doubtful on the
    anomalies: every metric is informative, so the BRAVO Index is far from 0 and must match."""
    _, _, synth = work
    sub = tmp_path / "good"
    rng = np.random.default_rng(7)
    for gt_path in sorted((synth / "gtFine").glob("*/synth/*_gtFine_labelTrainIds.png")):
        split, stem = gt_path.parent.parent.name, gt_path.name[: -len("_gtFine_labelTrainIds.png")]
        labels = cv2.imread(str(gt_path), cv2.IMREAD_UNCHANGED)
        ood = cv2.imread(str(synth / "ood" / split / "synth" / f"{stem}_ood.png"), -1)
        right = rng.random(labels.shape) < 0.8
        truth = np.where(labels == 255, 0, labels)
        pred = np.where(right, truth, (truth + 1) % 19).astype(np.uint8)
        conf = np.where(
            right, rng.integers(25000, 65536, labels.shape), rng.integers(0, 40000, labels.shape)
        )
        conf = np.where(ood == 1, rng.integers(0, 15000, labels.shape), conf).astype(np.uint16)
        folder = sub / "leftImg8bit" / split / "synth"
        _write(folder / f"{stem}_leftImg8bit_pred.png", pred)
        _write(folder / f"{stem}_leftImg8bit_conf.png", conf)
    out_json = tmp_path / "good.json"
    assert main(["evaluate", str(synth), str(sub), "--json", str(out_json), "--no-progress"]) == 0
    direct = _direct_synth_results(synth, sub)
    report = json.loads(out_json.read_text())
    assert 0.3 < direct["bravo_index"] < 1
    for key in ("semantic_hmean", "ood_hmean", "bravo_index", "ood_shift_hmean", "val_ece_valid"):
        assert report["results"][key] == pytest.approx(direct[key])
    assert f"{direct['bravo_index']:.4f}" in capsys.readouterr().out


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def _bravo_tree(root, rng):
    """Inputs of four BRAVO splits plus their ground truth, in the toolkit's names."""
    images = {
        "bravo_ACDC/fog/test/G/G_frame_000001_rgb_anon.png": (20, 30),
        "bravo_ACDC/fog/test/G/G_frame_000002_rgb_anon.png": (20, 30),
        "bravo_synobjs/cat/1.png": (24, 16),
        "bravo_SMIYC/RoadAnomaly21/images/airplane0000.jpg": (18, 26),
        "bravo_outofcontext/x/y_leftImg8bit.png": (16, 16),
    }
    for rel, (h, w) in images.items():
        _write(root / rel, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    # files that are not inputs: ACDC reference frame, ground truth lying next to the images
    _write(
        root / "bravo_ACDC/fog/test/G/G_frame_000001_ref_anon.png", np.zeros((4, 4, 3), np.uint8)
    )
    for base, (h, w) in (("bravo_ACDC/fog/test/G/G_frame_00000{}", (20, 30)),):
        for i in (1, 2):
            _write(
                root / (base.format(i) + "_gt_labelTrainIds.png"),
                rng.integers(0, 19, (h, w), dtype=np.uint8),
            )
            _write(root / (base.format(i) + "_gt_invIds.png"), np.zeros((h, w), np.uint8))
    mask = np.zeros((24, 16), np.uint8)
    mask[5:12, 4:10] = 1
    _write(root / "bravo_synobjs/cat/1_gt.png", rng.integers(0, 19, (24, 16), dtype=np.uint8))
    _write(root / "bravo_synobjs/cat/1_mask.png", mask)
    return images


def test_predict_and_evaluate_on_the_bravo_layout(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data, sub = tmp_path / "bravo", tmp_path / "sub"
    images = _bravo_tree(data, rng)
    model = make_handmade_model(tmp_path / "m.onnx")
    assert main(["predict", str(model), str(data), "-o", str(sub), *CPU]) == 0
    expected = {
        "bravo_ACDC/fog/test/G/G_frame_000001_rgb_anon_pred.png",
        "bravo_ACDC/fog/test/G/G_frame_000001_rgb_anon_conf.png",
        "bravo_ACDC/fog/test/G/G_frame_000002_rgb_anon_pred.png",
        "bravo_ACDC/fog/test/G/G_frame_000002_rgb_anon_conf.png",
        "bravo_synobjs/cat/1_pred.png",
        "bravo_synobjs/cat/1_conf.png",
        "bravo_SMIYC/RoadAnomaly21/images/airplane0000_pred.png",
        "bravo_SMIYC/RoadAnomaly21/images/airplane0000_conf.png",
        "bravo_outofcontext/x/y_leftImg8bit_pred.png",
        "bravo_outofcontext/x/y_leftImg8bit_conf.png",
    }
    assert {p.relative_to(sub).as_posix() for p in sub.rglob("*") if p.is_file()} == expected
    for rel, size in images.items():
        stem = rel.rsplit(".", 1)[0]
        assert cv2.imread(str(sub / f"{stem}_pred.png"), -1).shape == size
        assert cv2.imread(str(sub / f"{stem}_conf.png"), -1).dtype == np.uint16

    out_json = tmp_path / "r.json"
    capsys.readouterr()
    assert main(["evaluate", str(data), str(sub), "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    direct = evaluate_submission(data, sub)
    report = json.loads(out_json.read_text())
    assert list(report["subsets"]) == ["ACDCfog", "synobjs"]
    assert report["bravo_index"] == pytest.approx(direct["bravo_index"])
    assert report["results"]["synobjs_auroc_ood"] == pytest.approx(direct["synobjs_auroc_ood"])
    assert f"{direct['ACDCfog_miou_valid']:.4f}" in table

    for path in (sub / "bravo_synobjs").rglob("*.png"):  # as after predict --subsets ACDCfog
        path.unlink()
    assert main(["evaluate", str(data), str(sub), "--json", str(out_json)]) == 0
    assert "no predictions in" in capsys.readouterr().err
    report = json.loads(out_json.read_text())
    assert list(report["subsets"]) == ["ACDCfog"] and report["skipped_subsets"] == ["synobjs"]
    assert report["results"]["ACDCfog_miou_valid"] == pytest.approx(direct["ACDCfog_miou_valid"])


def _one_line_error(capsys, args, needle):
    capsys.readouterr()
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("pixood-bravo") and needle in lines[0]
    assert "Traceback" not in captured.err


def test_user_mistakes_exit_2_with_one_line(work, tmp_path, capsys):
    root, model, synth = work
    out = str(tmp_path / "out")
    empty = tmp_path / "empty"
    (empty / "bravo_ACDC").mkdir(parents=True)
    broken = tmp_path / "broken"
    (broken / "bravo_synobjs/cat").mkdir(parents=True)
    (broken / "bravo_synobjs/cat/1.png").write_bytes(b"not a png")
    three = make_handmade_model(tmp_path / "three.onnx", class_names=["a", "b", "c"])
    foreign = make_foreign_model(tmp_path / "foreign.onnx")
    cases = [
        (["predict", str(model), str(tmp_path / "nope"), "-o", out], "input folder not found"),
        (["predict", str(model), str(tmp_path), "-o", out], "neither a BRAVO data set"),
        (["predict", str(model), str(empty), "-o", out], "no input images found"),
        (["predict", str(model), str(broken), "-o", out], "unreadable image"),
        (["predict", str(tmp_path / "no.onnx"), str(synth), "-o", out], "model file not found"),
        (["predict", str(foreign), str(synth), "-o", out], "not a PixOOD model"),
        (["predict", str(three), str(synth), "-o", out], "predicts 3 classes"),
        (["predict", str(model), str(synth), "-o", out, "--ood-threshold", "1.5"], "[0, 1]"),
        (["predict", str(model), str(synth), "-o", out, "--confidence", "max"], "invalid choice"),
        (["predict", str(model), str(synth)], "-o/--output"),
        (["predict", str(model), str(synth), "-o", out, "--subsets", "train"], "no images of"),
        (["evaluate", str(tmp_path / "nope"), str(root / "scorer")], "folder not found"),
        (["evaluate", str(synth), str(tmp_path / "nosub")], "submission folder not found"),
        (["evaluate", str(synth), str(model)], "submission folder is not a directory"),
        (["evaluate", str(synth), str(root / "scorer"), "--json", str(tmp_path)], "a directory"),
        (["predict", str(model), str(synth), "-o", str(model)], "exists and is not a directory"),
        (["evaluate", str(synth), str(empty)], "no predictions for any subset with ground"),
        (["evaluate", str(synth), str(root / "scorer"), "--subsets", "nope"], "no ground truth"),
    ]
    for args, needle in cases:
        extra = CPU if args[0] == "predict" and "-o" in args else ["--no-progress"]
        _one_line_error(capsys, args + extra, needle)


def test_evaluate_after_a_partial_predict_scores_what_was_predicted(work, tmp_path, capfd):
    """`predict --subsets ood_val` then `evaluate`: ood_val is scored, the others are named in one
    line; asking for an unpredicted subset is one line naming it and --subsets. No OpenCV
    warning reaches stderr (capfd sees the C++ side too)."""
    root, model, synth = work
    sub, report = tmp_path / "partial", tmp_path / "r.json"
    predict = ["predict", str(model), str(synth), "-o", str(sub), "--subsets", "ood_val", *CPU]
    assert main(predict) == 0
    capfd.readouterr()
    assert main(["evaluate", str(synth), str(sub), "--json", str(report), "--no-progress"]) == 0
    captured = capfd.readouterr()
    assert captured.err.splitlines() == [
        f"pixood-bravo: note: not evaluated, no predictions in {sub}: ood_shift, val "
        "(pixood-bravo predict --subsets ood_shift,val adds them)"
    ]
    data = json.loads(report.read_text())
    assert list(data["subsets"]) == ["ood_val"] and data["skipped_subsets"] == ["ood_shift", "val"]
    assert "ood_val" in captured.out and "ood_shift" not in captured.out

    args = ["evaluate", str(synth), str(sub), "--subsets", "ood_val,ood_shift", "--no-progress"]
    assert main(args) == 2
    assert capfd.readouterr().err.splitlines() == [
        f"pixood-bravo: error: {sub}: no predictions for subset(s) ood_shift; run pixood-bravo "
        "predict --subsets ood_shift first, or leave them out of --subsets"
    ]
    next(sub.rglob("*_conf.png")).unlink()  # a subset predicted in part is still an error
    assert main(["evaluate", str(synth), str(sub), "--no-progress"]) == 2
    err = capfd.readouterr().err
    assert "_conf.png: missing or not a readable image" in err.splitlines()[-1]
    assert "WARN" not in err


def test_reports_replace_symlinks_instead_of_writing_through(work, tmp_path):
    root, _, synth = work
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    out_json.symlink_to(victim)
    out_md.symlink_to(victim)
    args = ["evaluate", str(synth), str(root / "scorer"), "--json", str(out_json)]
    assert main([*args, "--markdown", str(out_md), "--no-progress"]) == 0
    assert victim.read_text() == "keep me"
    assert not out_json.is_symlink() and json.loads(out_json.read_text())["layout"] == "synth"
    assert not out_md.is_symlink() and out_md.read_text().startswith("# BRAVO evaluation")
    in_new_folder = tmp_path / "new" / "r.md"  # a missing folder is created
    args = ["evaluate", str(synth), str(root / "scorer"), "--markdown", str(in_new_folder)]
    assert main([*args, "--no-progress"]) == 0 and in_new_folder.is_file()


def test_help_explains_every_option(capsys):
    for command, options in (
        ("predict", ("--output", "--confidence", "--ood-threshold", "--subsets", "--providers")),
        ("evaluate", ("--json", "--markdown", "--subsets")),
    ):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert all(option in text for option in options)
    assert main(["--help"]) == 0
    assert "ood_shift" in capsys.readouterr().out  # the synth split → subset mapping
