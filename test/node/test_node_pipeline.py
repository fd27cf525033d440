"""Inference overlapped with publishing (`pixood_ros.node.pipeline`) and the compressed outputs:
the hand-over stays bounded and drops old results, shutdown with frames in flight gives every
output set back, every published frame is complete and in order, compressed outputs decode to
the raw ones, and nothing is rendered or encoded for an output nobody subscribes to."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from test_node import CPU, active_graph
from test_node_graph import (
    OUTPUTS,
    SlowSegmenter,
    make_image_msg,
    reliable,
    rng_image,
    stamp_ns,
)

from pixood_ros import image_conversion as ic
from pixood_ros.engine import Segmenter
from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.pipeline import FramePipeline
from pixood_ros.node.pixood_node import PixoodNode
from pixood_ros.render import outputs as render_outputs


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_hand_over_keeps_one_result_per_camera_and_drops_the_older():
    inbox = LatestFrameMailbox()
    published, discarded = [], []
    gate = threading.Event()

    def publish(key, result):
        gate.wait(5.0)
        published.append(result)

    pipeline = FramePipeline(
        inbox, lambda key, frame: frame, publish, lambda k, r: discarded.append(r)
    )
    pipeline.start()
    try:
        inbox.put("cam", 0)
        assert _until(lambda: inbox.pending() == 0 and pipeline.waiting_results() == 0)
        for frame in range(1, 21):  # the publisher is stuck on frame 0 meanwhile
            inbox.put("cam", frame)
            assert _until(lambda: inbox.pending() == 0)
            assert pipeline.waiting_results() == 1  # never a queue
        gate.set()
        assert _until(lambda: len(published) == 2)
    finally:
        pipeline.stop()
    assert published == [0, 20]  # the newest result wins
    assert discarded == list(range(1, 20))


def test_stop_with_frames_in_flight_accounts_for_every_result():
    inbox = LatestFrameMailbox()
    inferred, published, discarded = [], [], []

    def infer(key, frame):
        time.sleep(0.02)
        inferred.append(frame)
        return frame

    def publish(key, result):
        time.sleep(0.05)
        published.append(result)

    pipeline = FramePipeline(inbox, infer, publish, lambda k, r: discarded.append(r))
    pipeline.start()
    for frame in range(30):
        inbox.put(frame % 2, frame)
        time.sleep(0.005)
    start = time.monotonic()
    pipeline.stop()
    assert time.monotonic() - start < 1.0
    assert not [t for t in threading.enumerate() if t.name.startswith("pixood_")]
    assert sorted(published + discarded) == sorted(inferred)  # none lost, none twice
    assert discarded  # the publisher was behind, so results were dropped, not queued


# --- over a real graph ---------------------------------------------------------------------


def _slow_node(delay: float):
    """A node factory whose model takes `delay` s more than the real engine."""

    def make(**kwargs) -> PixoodNode:
        return PixoodNode(
            segmenter_factory=lambda s: SlowSegmenter(
                Segmenter(s.model_path, providers=["cpu"], warmup=False), delay
            ),
            **kwargs,
        )

    return make


COMPRESSED = ("overlay", "anomaly_mask", "semantic")


def _subscribe_compressed(graph, names=COMPRESSED) -> dict[str, dict[int, CompressedImage]]:
    received: dict[str, dict[int, CompressedImage]] = {name: {} for name in names}

    def store(name, msg):
        with graph.lock:
            received[name][stamp_ns(msg.header)] = msg
            graph.lock.notify_all()

    for name in names:
        graph.subscriptions.append(
            graph.tester.create_subscription(
                CompressedImage,
                f"/pixood_node/{name}/compressed",
                lambda msg, n=name: store(n, msg),
                reliable(),
            )
        )
    graph.wait_connected()
    return received


def _smooth_image(height: int, width: int) -> np.ndarray:
    """Gradients JPEG keeps nearly intact (random noise would not survive any JPEG)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 255 // height, cols * 255 // width, (rows + cols) % 256], -1).astype(
        np.uint8
    )


@pytest.mark.ros
def test_compressed_outputs_decode_to_the_raw_outputs(graph_factory, model_path):
    graph = active_graph(graph_factory, model_path, jpeg_quality=95, png_level=6, threshold=0.3)
    compressed = _subscribe_compressed(graph)
    stamp = 7_000_000_123
    graph.publish(make_image_msg(_smooth_image(96, 128), "rgb8", stamp, frame_id="cam"))
    raw = graph.wait_outputs(stamp)
    assert graph.wait_for(lambda: all(stamp in compressed[n] for n in COMPRESSED))
    for name in COMPRESSED:
        msg = compressed[name][stamp]
        assert msg.header.frame_id == "cam"
        codec = "jpeg" if name == "overlay" else "png"
        assert msg.format == f"{raw[name].encoding}; {codec} compressed {raw[name].encoding}"
        decoded = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_UNCHANGED)
        expected = ic.image_to_array(raw[name])
        if codec == "png":  # lossless: the very same bytes
            np.testing.assert_array_equal(decoded, expected)
        else:
            assert decoded.shape == expected.shape
            error = np.abs(decoded.astype(np.int16) - expected)
            assert error.mean() < 2.0, error.mean()
    assert (ic.image_to_array(raw["anomaly_mask"]) == 255).any()  # the mask is not trivial
    assert len(compressed["overlay"][stamp].data) < raw["overlay"].height * raw["overlay"].step


@pytest.mark.ros
def test_nothing_is_rendered_or_encoded_for_outputs_nobody_subscribes(
    graph_factory, model_path, monkeypatch
):
    rendered: list[str] = []
    encoded: list[str] = []
    pixels, compress = render_outputs.OutputImages.pixels, render_outputs.compressed_message

    def counting_pixels(self, name, *args):
        rendered.append(name)
        return pixels(self, name, *args)

    def counting_compress(name, *args):
        encoded.append(name)
        return compress(name, *args)

    monkeypatch.setattr(render_outputs.OutputImages, "pixels", counting_pixels)
    monkeypatch.setattr(render_outputs, "compressed_message", counting_compress)
    params = {"model_path": str(model_path), "input_qos": "reliable", **CPU}
    graph = graph_factory(PixoodNode, params, outputs=("anomaly_score",))
    assert graph.node.autostart()
    graph.wait_connected()
    frame = make_image_msg(rng_image(48, 64, 1), "rgb8", 0)
    for stamp in (1, 2, 3):
        frame.header.stamp.sec = stamp
        graph.publish(frame)
        graph.wait_outputs(stamp * 1_000_000_000, names=("anomaly_score",))
    assert set(rendered) == {"anomaly_score"} and encoded == []
    compressed = _subscribe_compressed(graph, ("overlay",))
    frame.header.stamp.sec = 4
    graph.publish(frame)
    assert graph.wait_for(lambda: 4_000_000_000 in compressed["overlay"])
    assert "overlay" in rendered and encoded == ["overlay"]  # now wanted: rendered, encoded
    assert "anomaly_mask" not in rendered


@pytest.mark.ros
def test_every_published_frame_is_complete_and_in_order(graph_factory, model_path):
    params = {"model_path": str(model_path), "input_qos": "reliable", **CPU}
    graph = graph_factory(_slow_node(0.03), params)
    assert graph.node.autostart()
    graph.wait_connected()
    frame = make_image_msg(rng_image(120, 160, 2), "rgb8", 0)
    for second in range(1, 41):  # faster than the model: the node must drop some
        frame.header.stamp.sec = second
        graph.publish(frame)
        time.sleep(0.01)
    stats = graph.node.channels[0].stats
    assert graph.wait_until(lambda: stats.snapshot().received == 40)
    assert graph.wait_until(
        lambda: (s := stats.snapshot()).processed + s.dropped == 40 and s.processed > 0
    )
    processed = stats.snapshot().processed
    assert graph.wait_for(
        lambda: all(len(graph.received[f"/pixood_node/{n}"]) == processed for n in OUTPUTS)
    )
    with graph.lock:
        stamps = {
            n: [s for topic, s, _ in graph.arrivals if topic == f"/pixood_node/{n}"]
            for n in OUTPUTS
        }
    first = stamps[OUTPUTS[0]]
    assert first == sorted(first) and len(set(first)) == len(first)  # in order, once each
    assert all(stamps[n] == first for n in OUTPUTS)  # every output of every published frame
    assert first[-1] == 40 * 1_000_000_000  # the newest frame is always served
    assert 0 < stats.snapshot().dropped < 40


@pytest.mark.ros
def test_shutdown_with_frames_in_flight_returns_every_output_set(graph_factory, model_path):
    params = {"model_path": str(model_path), "input_qos": "reliable", **CPU}
    graph = graph_factory(_slow_node(0.05), params)
    assert graph.node.autostart()
    graph.wait_connected()
    channel = graph.node.channels[0]
    taken: set[int] = set()
    take = channel.take_outputs

    def recording_take():
        outputs = take()
        taken.add(id(outputs))
        return outputs

    channel.take_outputs = recording_take
    frame = make_image_msg(rng_image(240, 320, 3), "rgb8", 0)
    for second in range(1, 16):
        frame.header.stamp.sec = second
        graph.publish(frame)
        time.sleep(0.02)
    assert graph.wait_until(lambda: channel.stats.snapshot().processed >= 1)
    start = time.monotonic()
    graph.node.trigger_shutdown()
    assert time.monotonic() - start < 2.0
    assert graph.node.lifecycle_state == "finalized"
    assert not [t for t in threading.enumerate() if t.name.startswith("pixood_")]
    assert 2 <= len(taken) <= 3  # overlapped, and bounded: model, hand-over, publisher
    assert {id(outputs) for outputs in channel.free_outputs} == taken  # all given back
