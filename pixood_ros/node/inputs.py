"""The node's camera subscriptions: every camera's input topic (and its camera_info) subscribed
while the node is active, or (`lazy_subscription`) only while one of that camera's outputs has a
subscriber.

With `input_qos` auto a camera is subscribed once its first publisher appears, with that
publisher's reliability (see `channels.auto_input_qos`); a best-effort publisher appearing
later turns a reliable subscription into a best-effort one, which serves both. The node calls
`update` periodically while lazy subscription or auto QoS needs watching the graph.

Callbacks only hand the message to the node (its mailbox), so subscriptions never wait for the
model; they share one mutually exclusive callback group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from pixood_ros.node.channels import CameraChannel, auto_input_qos, input_qos_profile
from pixood_ros.node.parameters import Settings

AUTO = "auto"
# camera_info is small: best effort takes it from reliable and best-effort publishers alike.
CAMERA_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
# Seconds between looks at the input publishers with input_qos auto (without lazy subscription).
PUBLISHER_CHECK_S = 0.1


class CameraInputs:
    """Subscribes and unsubscribes the input topics of the node's camera channels."""

    def __init__(self, node: Node, on_frame: Callable[[CameraChannel, Any], None]) -> None:
        self._node = node
        self._on_frame = on_frame
        self._group = MutuallyExclusiveCallbackGroup()

    def subscribe(self, channel: CameraChannel, settings: Settings) -> None:
        """Subscribe `channel`; with input_qos auto only once a publisher is there to follow."""
        if channel.subscription is not None:
            return
        kind = settings.input_qos
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda info, c=channel: self._on_incompatible_qos(c, info)
        )
        if kind == AUTO:
            # `update` resolves incompatibilities: no warning for a publisher it will follow.
            events = SubscriptionEventCallbacks(use_default_callbacks=False)
            kind = auto_input_qos(self._publisher_reliabilities(channel))
            channel.waiting_for_publisher = kind is None
            if kind is None:
                return
            self._node.get_logger().info(
                f"input_qos auto: {'reliable' if kind == 'reliable' else 'best effort'} "
                f"subscription on {channel.input_topic}, following its publisher(s)"
            )
        msg_type = CompressedImage if settings.input_transport == "compressed" else Image
        channel.subscription = self._node.create_subscription(
            msg_type,
            channel.input_topic,
            lambda msg, c=channel: self._on_frame(c, msg),
            input_qos_profile(kind, settings.input_queue_depth),
            callback_group=self._group,
            event_callbacks=events,
        )
        channel.subscription_qos = kind
        channel.camera_info_sub = self._node.create_subscription(
            CameraInfo,
            channel.camera_info_topic,
            lambda msg, c=channel: setattr(c, "camera_info", msg),
            CAMERA_INFO_QOS,
            callback_group=self._group,
        )

    def unsubscribe(self, channel: CameraChannel) -> None:
        channel.waiting_for_publisher = False
        if channel.subscription is not None:
            self._node.destroy_subscription(channel.subscription)
            self._node.destroy_subscription(channel.camera_info_sub)
            channel.subscription = channel.camera_info_sub = None
            channel.subscription_qos = ""

    def check_period(self, settings: Settings) -> float | None:
        """How often `update` must run for `settings`; None: never (all subscribed at once)."""
        if settings.lazy_subscription:
            return settings.lazy_check_period
        return PUBLISHER_CHECK_S if settings.input_qos == AUTO else None

    def update(self, channels: list[CameraChannel], settings: Settings) -> None:
        """Follow the graph: output subscribers (lazy subscription) and input publishers (auto)."""
        for channel in channels:
            if settings.lazy_subscription:
                self._follow_outputs(channel, settings)
            elif channel.subscription is None:
                self.subscribe(channel, settings)  # auto: waiting for a publisher
            if settings.input_qos == AUTO and channel.subscription is not None:
                self._follow_publishers(channel, settings)

    def _follow_outputs(self, channel: CameraChannel, settings: Settings) -> None:
        """Lazy subscription: listen to a camera only while its outputs have subscribers."""
        log = self._node.get_logger()
        wanted = channel.has_output_subscribers()
        if wanted and channel.subscription is None:
            self.subscribe(channel, settings)
            if channel.subscription is not None:
                log.info(f"output subscribed: listening on {channel.input_topic}")
        elif not wanted and (channel.subscription is not None or channel.waiting_for_publisher):
            self.unsubscribe(channel)
            log.info(f"no output subscribers: stopped listening on {channel.input_topic}")

    def _follow_publishers(self, channel: CameraChannel, settings: Settings) -> None:
        """A best-effort publisher next to a reliable subscription: resubscribe best effort."""
        if channel.subscription_qos != "reliable":
            return
        if auto_input_qos(self._publisher_reliabilities(channel)) == "sensor_data":
            self.unsubscribe(channel)
            self.subscribe(channel, settings)

    def _publisher_reliabilities(self, channel: CameraChannel) -> list[Any]:
        infos = self._node.get_publishers_info_by_topic(channel.input_topic)
        return [info.qos_profile.reliability for info in infos]

    def _on_incompatible_qos(self, channel: CameraChannel, info: Any) -> None:
        self._node.get_logger().warning(
            f"a publisher on {channel.input_topic} has incompatible QoS "
            f"(policy {info.last_policy_kind}); with input_qos=reliable only reliable "
            "publishers connect, use input_qos=auto or sensor_data for best-effort cameras"
        )
