"""Fixtures of the node tests: the hand-made model, the engine on it (the reference the node's
outputs are compared with), and rclpy graphs that are always torn down."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import make_handmade_model
from test_node_graph import NodeGraph

from pixood_ros.engine import Segmenter


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_handmade_model(tmp_path_factory.mktemp("model") / "handmade.onnx")


@pytest.fixture(scope="module")
def segmenter(model_path) -> Segmenter:
    return Segmenter(model_path, providers=["cpu"], warmup=False)


@pytest.fixture
def graph_factory():
    graphs: list[NodeGraph] = []

    def make(*args, **kwargs) -> NodeGraph:
        graph = NodeGraph(*args, **kwargs)
        graphs.append(graph)
        return graph

    yield make
    for graph in graphs:
        graph.close()
