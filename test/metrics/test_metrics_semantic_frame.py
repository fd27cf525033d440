"""One-pass semantic frame scoring gives the accumulators' own numbers, bit for bit."""

import numpy as np
import pytest

from pixood_ros.metrics.semantic import CalibrationAccumulator, ConfusionMatrixAccumulator
from pixood_ros.metrics.semantic_frame import add_semantic_frame


def _separately(pred, gt, confidence, classes=5, bins=15):
    confusion, calibration = ConfusionMatrixAccumulator(classes), CalibrationAccumulator(bins)
    confusion.update(pred, gt)
    valid = gt != 255
    calibration.update(confidence[valid], (pred == gt)[valid])
    return confusion, calibration


def _frame(rng, shape=(61, 83)):
    gt = rng.integers(0, 5, shape).astype(np.uint8)
    gt[rng.random(shape) < 0.2] = 255
    pred = rng.integers(0, 5, shape).astype(np.uint8)
    confidence = (rng.random(shape, dtype=np.float32) ** 4).astype(np.float32)
    confidence[0, :4] = [0.0, 1.0, np.float32(1 / 15), np.nextafter(np.float32(2 / 15), 0)]
    return pred, gt, confidence


@pytest.mark.parametrize("bins", [15, 10, 20, 200])  # 200: 16-bit (bin, correct) codes
def test_frames_give_the_same_confusion_matrix_and_calibration_sums(bins):
    rng = np.random.default_rng(3)
    confusion, calibration = ConfusionMatrixAccumulator(5), CalibrationAccumulator(bins)
    expected_conf, expected_cal = ConfusionMatrixAccumulator(5), CalibrationAccumulator(bins)
    for _ in range(3):
        pred, gt, confidence = _frame(rng)
        add_semantic_frame(confusion, calibration, pred, gt, confidence)
        conf_one, cal_one = _separately(pred, gt, confidence, bins=bins)
        expected_conf.matrix += conf_one.matrix
        expected_cal.count += cal_one.count
        expected_cal.correct += cal_one.correct
        expected_cal.conf_sum += cal_one.conf_sum
    np.testing.assert_array_equal(confusion.matrix, expected_conf.matrix)
    np.testing.assert_array_equal(calibration.count, expected_cal.count)
    np.testing.assert_array_equal(calibration.correct, expected_cal.correct)
    np.testing.assert_array_equal(calibration.conf_sum, expected_cal.conf_sum)  # bit for bit
    assert calibration.compute() == expected_cal.compute()


@pytest.mark.parametrize("where", ["gt", "pred"])
def test_class_ids_outside_the_model_raise_the_accumulators_error(where):
    pred, gt, confidence = _frame(np.random.default_rng(4))
    (gt if where == "gt" else pred)[1, 1] = 7
    gt[1, 1] = 7 if where == "gt" else 0
    with pytest.raises(ValueError, match=rf"{where} holds class ids outside \[0, 5\).*\[7\]"):
        add_semantic_frame(
            ConfusionMatrixAccumulator(5), CalibrationAccumulator(), pred, gt, confidence
        )


def test_confidence_outside_0_1_on_a_void_pixel_is_ignored_as_before():
    pred, gt, confidence = _frame(np.random.default_rng(5))
    gt[2, 2], confidence[2, 2] = 255, 1.5
    confusion, calibration = ConfusionMatrixAccumulator(5), CalibrationAccumulator()
    add_semantic_frame(confusion, calibration, pred, gt, confidence)
    _, expected = _separately(pred, gt, confidence)
    assert calibration.compute() == expected.compute()
