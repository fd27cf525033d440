"""The node's camera subscriptions: every camera's input topic subscribed while the node is
active, or (`lazy_subscription`) only while one of that camera's outputs has a subscriber.

Callbacks only hand the message to the node (its mailbox), so subscriptions never wait for the
model; they share one mutually exclusive callback group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from pixood_ros.node.channels import CameraChannel, input_qos_profile
from pixood_ros.node.parameters import Settings


class CameraInputs:
    """Subscribes and unsubscribes the input topics of the node's camera channels."""

    def __init__(self, node: Node, on_frame: Callable[[CameraChannel, Any], None]) -> None:
        self._node = node
        self._on_frame = on_frame
        self._group = MutuallyExclusiveCallbackGroup()

    def subscribe(self, channel: CameraChannel, settings: Settings) -> None:
        if channel.subscription is not None:
            return
        msg_type = CompressedImage if settings.input_transport == "compressed" else Image
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda info, c=channel: self._on_incompatible_qos(c, info)
        )
        channel.subscription = self._node.create_subscription(
            msg_type,
            channel.input_topic,
            lambda msg, c=channel: self._on_frame(c, msg),
            input_qos_profile(settings.input_qos, settings.input_queue_depth),
            callback_group=self._group,
            event_callbacks=events,
        )

    def unsubscribe(self, channel: CameraChannel) -> None:
        if channel.subscription is not None:
            self._node.destroy_subscription(channel.subscription)
            channel.subscription = None

    def follow_outputs(self, channels: list[CameraChannel], settings: Settings) -> None:
        """Lazy subscription: listen to a camera only while its outputs have subscribers."""
        log = self._node.get_logger()
        for channel in channels:
            wanted = channel.has_output_subscribers()
            if wanted and channel.subscription is None:
                self.subscribe(channel, settings)
                log.info(f"output subscribed: listening on {channel.input_topic}")
            elif not wanted and channel.subscription is not None:
                self.unsubscribe(channel)
                log.info(f"no output subscribers: stopped listening on {channel.input_topic}")

    def _on_incompatible_qos(self, channel: CameraChannel, info: Any) -> None:
        self._node.get_logger().warning(
            f"a publisher on {channel.input_topic} has incompatible QoS "
            f"(policy {info.last_policy_kind}); with input_qos=reliable only reliable "
            "publishers connect, use input_qos=sensor_data for best-effort cameras"
        )
