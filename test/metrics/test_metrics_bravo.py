"""BRAVO metrics: aggregation (published InternImage-OOD numbers), pixel sampling, 65536-level
curve metrics and ECE, the per-subset accumulator, and the submission PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from pixood_ros.bravo.files import (
    ground_truth_paths,
    prediction_paths,
    read_prediction,
    subset_of,
    write_prediction,
)
from pixood_ros.bravo.submission import evaluate_submission
from pixood_ros.metrics import miou
from pixood_ros.metrics.bravo import (
    BravoSubsetAccumulator,
    bravo_ece,
    bravo_index,
    curve_metrics,
    harmonic_mean,
    level_histograms,
    sample_indices,
    summarize,
)


def test_bravo_index_reproduces_internimage_ood_published_numbers():
    # README of InternImage-OOD: semantic 0.6934, OOD 0.5710 → BRAVO Index 0.6263
    # 2·0.6934·0.5710 / (0.6934 + 0.5710) = 0.7918628 / 1.2644 = 0.62628
    assert round(bravo_index(0.6934, 0.5710), 4) == 0.6263
    # its "no KMeans" ablation: 0.6933, 0.5621 → 0.6208
    assert round(bravo_index(0.6933, 0.5621), 4) == 0.6208


def test_summarize_flips_smaller_is_better_metrics_and_uses_both_groups():
    results: dict[str, object] = {}
    for s in (
        "ACDCfog",
        "ACDCrain",
        "ACDCnight",
        "ACDCsnow",
        "synrain",
        "synobjs",
        "synflare",
        "outofcontext",
    ):
        results.update({
            f"{s}_miou_valid": 0.5, f"{s}_ece_valid": 0.1, f"{s}_auroc_valid": 0.9,
            f"{s}_auprc_success_valid": 0.9, f"{s}_auprc_error_valid": 0.5,
            f"{s}_fpr95_valid": 0.1, f"{s}_iou_valid": [0.5] * 19,  # list: not a scalar, skipped
        })  # fmt: skip
    for s in ("SMIYC", "synobjs"):
        results.update({f"{s}_auroc_ood": 0.8, f"{s}_auprc_ood": 0.4, f"{s}_fpr95_ood": 0.6})
    out = summarize(results)
    # semantic: 48 values, per subset [.5, 1−.1, .9, .9, .5, 1−.1] → 6 / (2/.5 + 4/.9) = 27/38
    assert out["semantic_hmean"] == pytest.approx(27 / 38)
    # OOD: 6 values, per subset [.8, .4, 1−.6] → 3 / (1.25 + 2.5 + 2.5) = 0.48
    assert out["ood_hmean"] == pytest.approx(0.48)
    # index = 2·(27/38)·0.48 / (27/38 + 0.48) = 648/1131
    assert out["bravo_index"] == pytest.approx(648 / 1131)
    assert out["SMIYC_hmean"] == pytest.approx(0.48)
    assert harmonic_mean([0.9, 0.0]) == 0.0
    with pytest.raises(ValueError, match="OOD"):
        summarize({"ACDCfog_miou_valid": 0.5})


def test_sampling_reproduces_the_toolkit_seeded_choice():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 19, (300, 400)).astype(np.uint8)  # 120 000 pixels
    gt[rng.random(gt.shape) < 0.1] = 255
    got = sample_indices(gt)
    # the toolkit: np.random.seed(1); np.random.choice(non_void, 100_000, replace=False); sort
    state = np.random.get_state()
    try:
        np.random.seed(1)
        expected = np.sort(np.random.choice(np.flatnonzero(gt.ravel() != 255), 100_000, False))
    finally:
        np.random.set_state(state)
    assert np.array_equal(got, expected)
    assert np.all(gt.ravel()[got] != 255) and np.all(np.diff(got) > 0)
    small = gt[:100]  # fewer non-void pixels than 100 000: all of them, in order
    assert np.array_equal(sample_indices(small), np.flatnonzero(small.ravel() != 255))


def test_level_curve_metrics_match_sklearn_on_uint16_scores():
    rng = np.random.default_rng(1)
    conf = rng.integers(0, 65536, 30_000)
    conf[:10_000] = rng.integers(60_000, 60_010, 10_000)  # heavy ties
    correct = rng.random(30_000) < conf / 65535
    m = curve_metrics(*level_histograms(conf, correct))
    assert m["auroc"] == pytest.approx(roc_auc_score(correct, conf), abs=1e-9)
    assert m["auprc"] == pytest.approx(average_precision_score(correct, conf), abs=1e-9)
    # AUPR-error: positives = incorrect pixels, score = 65535 − conf
    err = average_precision_score(~correct, 65535 - conf)
    assert m["auprc_negative"] == pytest.approx(err, abs=1e-9)
    fpr, tpr, _ = roc_curve(correct, conf, drop_intermediate=False)
    assert m["fpr95"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)


def test_bravo_ece_groups_levels_at_the_documented_boundaries():
    rng = np.random.default_rng(2)
    levels = rng.integers(0, 65536, 20_000)
    correct = rng.random(20_000) < 0.8
    # the 15 level runs of docs/evaluation.md §2.3
    bounds = [0, 4369, 8738, 13107, 17476, 21845, 26214, 30583, 34953, 39322, 43691, 48060,
              52429, 56798, 61167, 65536]  # fmt: skip
    conf = (levels + 0.5) / 65536
    ref = 0.0
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        sel = (levels >= lo) & (levels < hi)
        ref += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    pos, neg = level_histograms(levels, correct)
    assert bravo_ece(pos, pos + neg) == pytest.approx(ref, abs=1e-12)
    # hand case: level 0 wrong, level 65535 right → each bin off by 0.5/65536; ECE = 0.5/65536
    pos, neg = level_histograms(np.array([0, 65535]), np.array([False, True]))
    assert bravo_ece(pos, pos + neg) == pytest.approx(0.5 / 65536)


def _subset_images(seed: int, n: int = 3):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        gt = rng.integers(0, 19, (20, 30)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.1] = 255
        invalid = (rng.random(gt.shape) < 0.2).astype(np.uint8)
        pred = np.where(rng.random(gt.shape) < 0.6, gt, rng.integers(0, 19, gt.shape)) % 19
        conf = rng.integers(0, 65536, gt.shape).astype(np.uint16)
        conf[invalid == 1] //= 4  # OOD pixels get lower confidence
        yield gt, pred.astype(np.uint8), conf, invalid


def test_subset_accumulator_matches_direct_computation():
    acc = BravoSubsetAccumulator.for_subset("synobjs")  # semantic + OOD
    imgs = list(_subset_images(3))
    for gt, pred, conf, invalid in imgs:
        acc.update(gt, pred, conf, invalid)
    out = acc.compute()
    # images are small, so every non-void pixel is sampled
    keep = [(g != 255) for g, *_ in imgs]
    valid = [(g != 255) & (inv == 0) for g, _, _, inv in imgs]
    cat = np.concatenate
    assert out["miou_valid"] == pytest.approx(
        miou([p[v] for (_, p, _, _), v in zip(imgs, valid, strict=True)],
             [g[v] for (g, *_), v in zip(imgs, valid, strict=True)], 19))  # fmt: skip
    ok = cat([(p == g)[v] for (g, p, _, _), v in zip(imgs, valid, strict=True)])
    cf = cat([c[v] for (_, _, c, _), v in zip(imgs, valid, strict=True)]).astype(np.int64)
    assert out["auroc_valid"] == pytest.approx(roc_auc_score(ok, cf), abs=1e-9)
    assert out["auprc_success_valid"] == pytest.approx(average_precision_score(ok, cf), abs=1e-9)
    is_ood = cat([inv[k] != 0 for (_, _, _, inv), k in zip(imgs, keep, strict=True)])
    doubt = 65535 - cat([c[k] for (_, _, c, _), k in zip(imgs, keep, strict=True)]).astype(int)
    assert out["auroc_ood"] == pytest.approx(roc_auc_score(is_ood, doubt), abs=1e-9)
    assert out["auprc_ood"] == pytest.approx(average_precision_score(is_ood, doubt), abs=1e-9)
    assert out["auroc_ood"] > 0.6  # the lowered OOD confidence is detected

    smiyc = BravoSubsetAccumulator.for_subset("SMIYC")
    fog = BravoSubsetAccumulator.for_subset("ACDCfog")
    for gt, pred, conf, invalid in imgs:
        smiyc.update(gt, pred, conf, invalid)
        fog.update(gt, pred, conf, invalid)
    assert set(smiyc.compute()) == {"auroc_ood", "auprc_ood", "fpr95_ood"}
    assert "auroc_ood" not in fog.compute() and "ece_valid" in fog.compute()


def test_subset_accumulator_rejects_bad_inputs():
    gt, pred, conf, invalid = next(_subset_images(4, 1))
    acc = BravoSubsetAccumulator()
    with pytest.raises(ValueError, match="uint16"):
        acc.update(gt, pred, conf.astype(np.float32) / 65535, invalid)
    with pytest.raises(ValueError, match="0..18"):
        acc.update(gt, np.full_like(pred, 19), conf, invalid)
    with pytest.raises(ValueError, match="one shape"):
        acc.update(gt, pred[:5], conf, invalid)
    with pytest.raises(ValueError, match="unknown BRAVO subset"):
        BravoSubsetAccumulator.for_subset("ACDC")


def _png_header(path) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the PNG IHDR chunk."""
    data = path.read_bytes()[:26]
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return width, height, data[24], data[25]


def test_submission_png_round_trip_ids_bit_depth_and_size(tmp_path):
    rng = np.random.default_rng(6)
    h, w = 37, 53
    semantic = rng.integers(0, 19, (h, w)).astype(np.uint8)
    semantic[0, :19] = np.arange(19)
    confidence = rng.random((h, w)).astype(np.float32)
    confidence[0, 0], confidence[0, 1] = 0.0, 1.0
    rel = "bravo_ACDC/fog/test/GOPR0475/GOPR0475_frame_000041_rgb_anon.png"
    pred_path, conf_path = write_prediction(tmp_path, rel, semantic, confidence, (h, w))
    assert pred_path == tmp_path / rel.replace(".png", "_pred.png")
    assert conf_path == tmp_path / rel.replace(".png", "_conf.png")
    assert _png_header(pred_path) == (w, h, 8, 0)  # 8-bit greyscale
    assert _png_header(conf_path) == (w, h, 16, 0)  # 16-bit greyscale
    pred_back, conf_back = read_prediction(pred_path, conf_path, (h, w))
    assert pred_back.dtype == np.uint8 and np.array_equal(pred_back, semantic)
    assert conf_back.dtype == np.uint16
    assert np.array_equal(conf_back, np.round(confidence.astype(np.float64) * 65535))
    assert conf_back[0, 0] == 0 and conf_back[0, 1] == 65535


def test_submission_naming_layout_and_subsets(tmp_path):
    cases = {
        "bravo_SMIYC/RoadAnomaly21/images/airplane0000.jpg":
            "bravo_SMIYC/RoadAnomaly21/images/airplane0000_pred.png",
        "bravo_synobjs/armchair/1.png": "bravo_synobjs/armchair/1_pred.png",
        "bravo_outofcontext/x/y_leftImg8bit.png": "bravo_outofcontext/x/y_leftImg8bit_pred.png",
    }  # fmt: skip
    for rel, expected in cases.items():
        assert prediction_paths(rel, tmp_path)[0] == tmp_path / expected
    assert subset_of("bravo_ACDC/night/test/G/G_frame_1_rgb_anon.png") == "ACDCnight"
    assert subset_of("bravo_synobjs/armchair/1.png") == "synobjs"
    gt, mask = ground_truth_paths("bravo_ACDC/fog/test/G/G_f_rgb_anon_pred.png", tmp_path)
    assert gt == tmp_path / "bravo_ACDC/fog/test/G/G_f_gt_labelTrainIds.png"
    assert mask == tmp_path / "bravo_ACDC/fog/test/G/G_f_gt_invIds.png"
    gt, mask = ground_truth_paths("bravo_SMIYC/RoadAnomaly21/images/cow0013_pred.png", tmp_path)
    assert (
        gt.name == "cow0013_labels_semantic_fake.png" and mask.name == "cow0013_labels_semantic.png"
    )
    with pytest.raises(ValueError, match="BRAVO split"):
        prediction_paths("cityscapes/val/a.png", tmp_path)


def test_submission_writer_and_reader_reject_what_the_evaluator_would(tmp_path):
    import cv2

    sem = np.zeros((4, 6), np.uint8)
    conf = np.ones((4, 6), np.float32)
    rel = "bravo_synobjs/cat/2.png"
    with pytest.raises(ValueError, match="0..18"):
        write_prediction(tmp_path, rel, sem + 19, conf)
    with pytest.raises(ValueError, match="input image"):
        write_prediction(tmp_path, rel, sem, conf, image_size=(5, 6))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_prediction(tmp_path, rel, sem, conf * 2)
    rgb = tmp_path / "rgb_pred.png"
    cv2.imwrite(str(rgb), np.zeros((4, 6, 3), np.uint8))
    pred_path, conf_path = write_prediction(tmp_path, rel, sem, conf)
    with pytest.raises(ValueError, match="single-channel uint8"):
        read_prediction(rgb, conf_path)
    with pytest.raises(ValueError, match="single-channel uint16"):
        read_prediction(pred_path, pred_path)
    with pytest.raises(ValueError, match="missing"):
        read_prediction(tmp_path / "nope_pred.png", conf_path)


def test_folder_evaluation_matches_the_accumulators(tmp_path):
    import cv2

    gt_root, sub_root = tmp_path / "gt", tmp_path / "sub"
    layout = {
        "synobjs": ("bravo_synobjs/cat/{i}", "_gt.png", "_mask.png", ".png"),
        "ACDCfog": ("bravo_ACDC/fog/test/G/G_{i}", "_gt_labelTrainIds.png", "_gt_invIds.png",
                    "_rgb_anon.png"),
    }  # fmt: skip
    direct = {}
    for subset, (base, gt_sfx, mask_sfx, img_sfx) in layout.items():
        direct[subset] = BravoSubsetAccumulator.for_subset(subset)
        for i, (gt, pred, conf, invalid) in enumerate(_subset_images(7, 2)):
            b = base.format(i=i)
            (gt_root / b).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(gt_root / (b + gt_sfx)), gt)
            cv2.imwrite(str(gt_root / (b + mask_sfx)), invalid)
            write_prediction(sub_root, b + img_sfx, pred, conf, gt.shape)
            direct[subset].update(gt, pred, conf, invalid)
    results = evaluate_submission(gt_root, sub_root)
    for subset, acc in direct.items():
        for key, value in acc.compute().items():
            assert results[f"{subset}_{key}"] == pytest.approx(value, nan_ok=True)
    assert 0 < results["bravo_index"] <= 1
    (sub_root / "bravo_synobjs/cat/1_conf.png").unlink()
    with pytest.raises(ValueError, match="1_conf.png: missing"):
        evaluate_submission(gt_root, sub_root)
