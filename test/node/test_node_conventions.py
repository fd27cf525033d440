"""ROS conventions a robot integrator relies on, over a real rclpy graph: diagnostics that name
the node by its fully qualified name."""

from __future__ import annotations

import functools

import pytest
from rclpy.parameter import Parameter

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
