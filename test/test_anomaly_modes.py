"""The anomaly modes on hand-made arrays: what each flags and what it never flags."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.anomaly_modes import (
    ANOMALY_MODES,
    DEFAULT_ANOMALY_MODE,
    AnomalyModeError,
    anomaly_map,
    check_mode,
    drivable_span,
    supported_modes,
)
from pixood_ros.engine import SegmentationResult

ROAD, SIDEWALK, BUILDING, SKY, CAR = 0, 1, 2, 10, 13
EVAL = (ROAD, SIDEWALK)
THRESHOLD = 0.995


def street(unknown: bool = True) -> SegmentationResult:
    """12x16 frame: sky (rows 0-3), building (4-5), road (6-11) with a car on it (rows 7-9,
    cols 2-4), an unknown object enclosed by road (rows 8-9, cols 8-9) and one standing on the
    frame's bottom edge (rows 10-11, cols 10-11: not enclosed by road, filling holes would lose
    it). The raw eval-label score flags every non-road
    pixel; the all-class score only the two unknown objects."""
    semantic = np.full((12, 16), ROAD, np.uint8)
    semantic[:4] = SKY
    semantic[4:6] = BUILDING
    semantic[7:10, 2:5] = CAR
    semantic[8:10, 8:10] = BUILDING  # the model's best guess for the unknown object
    semantic[10:12, 10:12] = BUILDING
    raw = (~np.isin(semantic, EVAL)).astype(np.float32)
    unknown_score = np.zeros((12, 16), np.float32)
    unknown_score[8:10, 8:10] = 1.0
    unknown_score[10:12, 10:12] = 1.0
    return SegmentationResult(
        anomaly_score=raw,
        semantic=semantic,
        confidence=np.ones((12, 16), np.float32),
        unknown_score=unknown_score if unknown else None,
    )


def flags(mode: str) -> np.ndarray:
    return anomaly_map(street(), mode, EVAL) >= THRESHOLD


def test_eval_labels_is_the_raw_score_flagging_everything_off_road():
    result = street()
    np.testing.assert_array_equal(anomaly_map(result, "eval_labels", EVAL), result.anomaly_score)
    assert flags("eval_labels")[:6].all()  # sky and building


@pytest.mark.parametrize("mode", ["unknown", "unknown_on_surface"])
def test_unknown_modes_do_not_flag_a_known_car_on_the_road(mode):
    flagged = flags(mode)
    assert not flagged[7:10, 2:5].any()
    assert flagged[8:10, 8:10].all()
    assert flagged.sum() == 8  # the two unknown objects, nothing else


@pytest.mark.parametrize("mode", ["surface", "unknown_on_surface"])
def test_surface_modes_keep_objects_on_the_road_and_never_flag_sky(mode):
    flagged = flags(mode)
    assert not flagged[:6].any()  # sky and building above the road
    assert flagged[8:10, 8:10].all()  # enclosed by road
    assert flagged[10:12, 10:12].all()  # on the frame's edge, road left and right of it


def test_surface_keeps_the_raw_score_values_inside_the_span():
    result = street()
    result.anomaly_score[:] = np.linspace(0, 1, 16, dtype=np.float32)
    score = anomaly_map(result, "surface", EVAL)
    np.testing.assert_array_equal(score[6:], result.anomaly_score[6:])
    assert not score[:6].any() and score.dtype == np.float32


def test_drivable_span_runs_from_leftmost_to_rightmost_drivable_pixel_per_row():
    semantic = np.full((3, 8), SKY, np.uint8)
    semantic[1, 2] = ROAD
    semantic[1, 5] = SIDEWALK
    semantic[2, 7] = ROAD
    span = drivable_span(semantic, EVAL)
    assert not span[0].any()
    assert span[1].tolist() == [False, False, True, True, True, True, False, False]
    assert span[2].tolist() == [False] * 7 + [True]


def test_anomaly_map_writes_into_out():
    result = street()
    out = np.full((12, 16), 7.0, np.float32)
    assert anomaly_map(result, "unknown_on_surface", EVAL, out=out) is out
    assert out.max() == 1.0 and out.sum() == 8


@pytest.mark.parametrize("mode", ["unknown", "unknown_on_surface"])
def test_unknown_modes_without_the_model_output_name_the_fix(mode):
    with pytest.raises(AnomalyModeError, match="re-export it with pixood-export"):
        anomaly_map(street(unknown=False), mode, EVAL)
    assert mode not in supported_modes(has_unknown_score=False)


def test_mode_names_are_checked():
    with pytest.raises(AnomalyModeError, match="is not one of"):
        check_mode("road")
    assert DEFAULT_ANOMALY_MODE in supported_modes(has_unknown_score=False)
    assert supported_modes(has_unknown_score=True) == ANOMALY_MODES
