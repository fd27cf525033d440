"""input_qos auto over a real rclpy graph: the node follows its camera's publisher, so large
reliable frames all arrive, and best-effort publishers still connect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from test_node_graph import make_image_msg, rng_image

from pixood_ros.node.channels import auto_input_qos
from pixood_ros.node.pixood_node import PixoodNode

pytestmark = pytest.mark.ros
RELIABLE, BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT


def test_auto_follows_the_publishers():
    assert auto_input_qos([]) is None
    assert auto_input_qos([RELIABLE, RELIABLE]) == "reliable"
    assert auto_input_qos([BEST_EFFORT]) == "sensor_data"
    assert auto_input_qos([RELIABLE, BEST_EFFORT]) == "sensor_data"  # serves both


# A camera driver in its own process: 6 reliable 1920x1080 rgb8 frames at 5 Hz, sent once the
# node's subscription matched (the loss the issue reports needs a second process: within one
# participant best effort loses nothing).
CAMERA = """
import sys, time
import numpy as np, rclpy
from rclpy.duration import Duration
from sensor_msgs.msg import Image
from test_node_graph import make_image_msg, reliable
rclpy.init()
node = rclpy.create_node("camera")
publisher = node.create_publisher(Image, "/image", reliable(10))
deadline = time.monotonic() + 20
while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
frame = np.zeros((1080, 1920, 3), np.uint8)
for index in range(int(sys.argv[1])):
    frame[index] = 255
    publisher.publish(make_image_msg(frame, "rgb8", 1_000 + index))
    time.sleep(0.2)
publisher.wait_for_all_acked(Duration(seconds=20))
"""


def test_default_qos_receives_every_1080p_frame_of_a_reliable_camera(graph_factory, model_path):
    """The issue: 1080p raw frames from a reliable camera process on the same machine mostly
    never arrived at the best-effort reader. With the default (auto) every sent frame does."""
    # A history of 6: a busy executor thread must not let the newest frame replace one before
    # it is taken (the latest-frame policy of depth 1); this test is about the transport.
    params = {"model_path": str(model_path), "providers": ["cpu"], "warmup": False}
    params["input_queue_depth"] = 6
    graph = graph_factory(PixoodNode, params, input_topics=(), subscribe_outputs=False)
    assert graph.node.get_parameter("input_qos").value == "auto"
    assert graph.node.autostart()
    channel, sent = graph.node.channels[0], 6
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    camera = subprocess.run(
        [sys.executable, "-c", CAMERA, str(sent)], env=env, timeout=60, capture_output=True
    )
    assert camera.returncode == 0, camera.stderr.decode()
    assert channel.subscription_qos == "reliable"
    assert graph.wait_until(lambda: channel.stats.snapshot().received == sent, 5.0)


def test_a_best_effort_publisher_joining_turns_the_input_best_effort(graph_factory, model_path):
    params = {"model_path": str(model_path), "providers": ["cpu"], "warmup": False}
    graph = graph_factory(PixoodNode, params, subscribe_outputs=False)
    assert graph.node.autostart()
    graph.wait_connected()
    channel = graph.node.channels[0]
    assert channel.subscription_qos == "reliable"
    other = graph.tester.create_publisher(
        Image, "/image", QoSProfile(depth=5, reliability=BEST_EFFORT)
    )
    assert graph.wait_until(lambda: channel.subscription_qos == "sensor_data", 5.0)
    graph.wait_connected()
    # Both publishers reach the node now.
    for publish in (other.publish, graph.publish):
        before = channel.stats.snapshot().received
        frame = make_image_msg(rng_image(4, 4, 1), "rgb8", 5_000 + before)
        assert graph.wait_until(
            lambda p=publish, f=frame, n=before: p(f) or channel.stats.snapshot().received > n,
            5.0,
        )


def test_auto_waits_for_a_publisher_and_says_so(graph_factory, model_path):
    params = {"model_path": str(model_path), "providers": ["cpu"], "warmup": False}
    graph = graph_factory(PixoodNode, params, input_topics=(), subscribe_outputs=False)
    assert graph.node.autostart()
    channel = graph.node.channels[0]
    assert channel.subscription is None and channel.waiting_for_publisher
    camera = graph.node.diagnostic_status()[1]
    assert camera.level == b"\x01" and "no publisher on /image yet" in camera.message
    publisher = graph.tester.create_publisher(Image, "/image", QoSProfile(depth=1))
    assert graph.wait_until(lambda: channel.subscription is not None, 5.0)
    assert channel.subscription_qos == "reliable" and publisher.get_subscription_count() >= 1
