"""Input topic names follow the `image` remap the way image_transport users expect (the
compressed topic and the camera_info sibling), and camera_info is passed through with the
outputs, over real rclpy nodes and a real graph."""

from __future__ import annotations

import functools
import os
import time

import cv2
import pytest
import rclpy
from sensor_msgs.msg import CameraInfo, CompressedImage
from test_node_graph import make_compressed_msg, make_image_msg, reliable, rng_image, stamp_ns

from pixood_ros.node.pixood_node import PixoodNode
from pixood_ros.node.topics import camera_topics

pytestmark = pytest.mark.ros
CPU = {"providers": ["cpu"], "warmup": False, "input_qos": "reliable"}


def _topics(remaps: list[str], base: str, transport: str, namespace: str = "/"):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    cli = ["--ros-args", *[arg for rule in remaps for arg in ("-r", rule)]]
    node = rclpy.create_node("n", namespace=namespace, context=context, cli_args=cli)
    try:
        return camera_topics(node.resolve_topic_name, base, transport)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.parametrize(
    ("remaps", "base", "transport", "namespace", "image", "info"),
    [
        ([], "image", "raw", "/", "/image", "/camera_info"),
        ([], "image", "compressed", "/front", "/front/image/compressed", "/front/camera_info"),
        (["image:=/cam/image_raw"], "image", "raw", "/", "/cam/image_raw", "/cam/camera_info"),
        (
            ["image:=/cam/image_raw"],
            "image",
            "compressed",
            "/",
            "/cam/image_raw/compressed",
            "/cam/camera_info",
        ),
        (  # an explicit compressed remap wins; the info follows it when image is not remapped
            ["image/compressed:=/other/image_raw/compressed"],
            "image",
            "compressed",
            "/",
            "/other/image_raw/compressed",
            "/other/camera_info",
        ),
        (
            ["image:=/cam/image_raw", "image/compressed:=/cam/jpeg", "camera_info:=/calib"],
            "image",
            "compressed",
            "/",
            "/cam/jpeg",
            "/calib",
        ),
        (
            ["image:=raw"],
            "image",
            "compressed",
            "/robot",
            "/robot/raw/compressed",
            "/robot/camera_info",
        ),
        (
            ["front/image:=/f/image_raw"],
            "front/image",
            "compressed",
            "/",
            "/f/image_raw/compressed",
            "/f/camera_info",
        ),
        ([], "front/image", "raw", "/", "/front/image", "/front/camera_info"),
    ],
)
def test_topics_follow_the_image_remap(remaps, base, transport, namespace, image, info):
    topics = _topics(remaps, base, transport, namespace)
    assert (topics.image, topics.camera_info) == (image, info)


def _jpeg(seed: int) -> bytes:
    ok, data = cv2.imencode(".jpg", rng_image(8, 8, seed))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("cameras", [None, ["front"]], ids=["single", "cameras"])
def test_compressed_input_follows_the_image_remap(graph_factory, model_path, cameras):
    """`-r image:=/cam/image_raw` (or `front/image:=...`) with input_transport compressed: the
    node listens on /cam/image_raw/compressed, as image_transport subscribers do."""
    local = "front/image" if cameras else "image"
    node = functools.partial(PixoodNode, cli_args=["--ros-args", "-r", f"{local}:=/cam/image_raw"])
    params = {"model_path": str(model_path), "input_transport": "compressed", **CPU}
    prefix = "/pixood_node/front/" if cameras else "/pixood_node/"
    if cameras:
        params["cameras"] = cameras
    graph = graph_factory(
        node,
        params,
        input_topics=("cam/image_raw/compressed",),
        input_type=CompressedImage,
        output_prefixes=(prefix,),
    )
    assert graph.node.autostart()
    assert graph.node.channels[0].input_topic == "/cam/image_raw/compressed"
    graph.wait_connected()
    graph.publish(make_compressed_msg(_jpeg(1), "jpeg", 77), "cam/image_raw/compressed")
    graph.wait_outputs(77, prefix=prefix)


def test_camera_info_is_passed_through_with_each_output_header(graph_factory, model_path):
    """~/camera_info: the camera's calibration re-stamped with each output frame's header, only
    once the camera published one (read from the sibling of the remapped image topic)."""
    node = functools.partial(PixoodNode, cli_args=["--ros-args", "-r", "image:=/cam/image_raw"])
    graph = graph_factory(
        node, {"model_path": str(model_path), **CPU}, input_topics=("cam/image_raw",)
    )
    infos: list[CameraInfo] = []
    graph.tester.create_subscription(
        CameraInfo, "/pixood_node/camera_info", infos.append, reliable()
    )
    assert graph.node.autostart()
    graph.wait_connected()
    channel = graph.node.channels[0]
    assert channel.camera_info_topic == "/cam/camera_info"
    assert graph.wait_until(lambda: channel.camera_info_pub.get_subscription_count() == 1)
    graph.publish(make_image_msg(rng_image(4, 6, 0), "rgb8", 10, "optical"), "cam/image_raw")
    graph.wait_outputs(10)
    time.sleep(0.2)
    assert infos == []  # no camera_info from the camera yet: nothing to pass on

    calibration = CameraInfo(height=4, width=6, distortion_model="plumb_bob")
    calibration.header.frame_id = "calibration_frame"
    calibration.k = [5.0, 0.0, 3.0, 0.0, 5.0, 2.0, 0.0, 0.0, 1.0]
    info_pub = graph.tester.create_publisher(CameraInfo, "/cam/camera_info", reliable(1))
    assert graph.wait_until(lambda: info_pub.get_subscription_count() == 1)
    info_pub.publish(calibration)
    assert graph.wait_until(lambda: channel.camera_info is not None)
    for stamp in (20, 30):
        graph.publish(make_image_msg(rng_image(4, 6, 0), "rgb8", stamp, "optical"), "cam/image_raw")
        score = graph.wait_outputs(stamp)["anomaly_score"]
        assert graph.wait_until(lambda s=stamp: any(stamp_ns(i.header) == s for i in infos))
        info = next(i for i in infos if stamp_ns(i.header) == stamp)
        assert info.header == score.header and info.header.frame_id == "optical"
        assert list(info.k) == list(calibration.k) and (info.height, info.width) == (4, 6)
