"""ROS conventions a robot integrator relies on, over a real rclpy graph: diagnostics that name
the node by its fully qualified name, the `~/enable` switch, the model's classes published."""

from __future__ import annotations

import functools
import json
import time

import pytest
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool
from test_node_graph import make_image_msg, rng_image

from pixood_ros.node.pixood_node import PixoodNode

pytestmark = pytest.mark.ros
CPU = {"providers": ["cpu"], "warmup": False, "input_qos": "reliable"}


def test_nodes_in_two_namespaces_publish_distinct_diagnostics(graph_factory, model_path):
    params = {"model_path": str(model_path), **CPU}
    graph = graph_factory(
        functools.partial(PixoodNode, namespace="front"), params, subscribe_outputs=False
    )
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    rear = PixoodNode(namespace="rear", context=graph.context, parameter_overrides=overrides)
    graph.executor.add_node(rear)
    try:
        assert graph.node.autostart() and rear.autostart()
        graph.node.publish_diagnostics()
        rear.publish_diagnostics()

        def names() -> dict[str, str]:
            return {s.name: s.hardware_id for a in graph.diagnostics for s in a.status}

        expected = {
            "/front/pixood_node: model": "/front/pixood_node",
            "/front/pixood_node: camera": "/front/pixood_node/camera",
            "/rear/pixood_node: model": "/rear/pixood_node",
            "/rear/pixood_node: camera": "/rear/pixood_node/camera",
        }
        assert graph.wait_for(lambda: len(names()) >= 4, 5.0)
        assert names() == expected
    finally:
        rear.trigger_shutdown()
        graph.executor.remove_node(rear)
        rear.destroy_node()


def _call(graph, client, request, timeout: float = 5.0):
    assert client.wait_for_service(timeout_sec=timeout)
    future = client.call_async(request)
    assert graph.wait_until(future.done, timeout)
    return future.result()


def test_enable_service_pauses_and_resumes_processing(graph_factory, model_path):
    params = {"model_path": str(model_path), **CPU}
    graph = graph_factory(PixoodNode, params)
    assert graph.node.autostart()
    graph.wait_connected()
    client = graph.tester.create_client(SetBool, "/pixood_node/enable")
    stats = graph.node.channels[0].stats
    graph.publish(make_image_msg(rng_image(4, 4, 0), "rgb8", 100))
    graph.wait_outputs(100)

    response = _call(graph, client, SetBool.Request(data=False))
    assert response.success and response.message == "processing disabled"
    for count, stamp in enumerate((101, 102, 103), start=2):
        graph.publish(make_image_msg(rng_image(4, 4, 0), "rgb8", stamp))
        assert graph.wait_until(lambda n=count: stats.snapshot().received == n, 5.0)
    time.sleep(0.3)
    assert stats.snapshot().processed == 1  # nothing run through the model
    assert not any(101 <= s <= 103 for r in graph.received.values() for s in r)
    model, camera = graph.node.diagnostic_status()
    assert {kv.key: kv.value for kv in model.values}["processing"] == "disabled"
    assert "disabled" in model.message and "disabled" in camera.message

    response = _call(graph, client, SetBool.Request(data=True))
    assert response.success and response.message == "processing enabled"
    graph.publish(make_image_msg(rng_image(4, 4, 0), "rgb8", 104))
    graph.wait_outputs(104)
    model, camera = graph.node.diagnostic_status()
    assert {kv.key: kv.value for kv in model.values}["processing"] == "enabled"
    assert "disabled" not in camera.message


def test_class_names_parameter_and_latched_class_info(graph_factory, model_path, segmenter):
    """After configure: the read-only parameter class_names, and ~/class_info (latched JSON)
    reaching a subscriber that starts later."""
    graph = graph_factory(PixoodNode, {"model_path": str(model_path), **CPU})
    info = segmenter.info
    assert not graph.node.has_parameter("class_names")  # nothing is known before configure
    assert graph.node.autostart()

    get = graph.tester.create_client(GetParameters, "/pixood_node/get_parameters")
    values = _call(graph, get, GetParameters.Request(names=["class_names"])).values
    assert list(values[0].string_array_value) == list(info.class_names)
    describe = graph.tester.create_client(DescribeParameters, "/pixood_node/describe_parameters")
    descriptor = _call(graph, describe, DescribeParameters.Request(names=["class_names"]))
    assert descriptor.descriptors[0].read_only
    set_ = graph.tester.create_client(SetParameters, "/pixood_node/set_parameters")
    attempt = Parameter("class_names", value=["x"]).to_parameter_msg()
    result = _call(graph, set_, SetParameters.Request(parameters=[attempt])).results[0]
    assert not result.successful

    received: list[String] = []
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    graph.tester.create_subscription(String, "/pixood_node/class_info", received.append, latched)
    assert graph.wait_until(lambda: len(received) == 1, 5.0)
    assert json.loads(received[0].data) == {
        "class_names": list(info.class_names),
        "palette": [list(c) for c in info.palette],
        "eval_labels": list(info.eval_labels),
        "scorer": info.scorer,
    }

    # A second configure (after cleanup) sets the read-only parameter again and re-publishes.
    assert graph.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert graph.node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    received.clear()
    assert graph.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert graph.node.get_parameter("class_names").value == list(info.class_names)
    assert graph.wait_until(lambda: len(received) == 1, 5.0)
