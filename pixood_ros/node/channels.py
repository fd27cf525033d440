"""One camera served by the node: its input topic and subscription, its output publishers and
the reused output messages in flight (and which of them to render), its statistics; and the
QoS of input and output topics.

Input and output QoS differ on purpose: the input accepts whatever camera drivers and bag
players offer, the outputs are reliable so that every kind of subscriber (rviz, bag recorder,
another node) can connect.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rclpy.event_handler import PublisherEventCallbacks
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from pixood_ros.engine import SegmentationResult
from pixood_ros.node.parameters import Settings
from pixood_ros.node.stats import PipelineStats
from pixood_ros.node.topics import Resolver, camera_topics
from pixood_ros.render.compressed import COMPRESSED_SUFFIX, Compression
from pixood_ros.render.outputs import OutputImages


def input_qos_profile(kind: str, depth: int) -> QoSProfile:
    """sensor_data = best effort (accepts every publisher); reliable = reliable only."""
    reliability = (
        ReliabilityPolicy.BEST_EFFORT if kind == "sensor_data" else ReliabilityPolicy.RELIABLE
    )
    return _volatile(depth, reliability)


def auto_input_qos(publishers: list[ReliabilityPolicy]) -> str | None:
    """input_qos auto: 'reliable' when every publisher is reliable, 'sensor_data' (best effort,
    serves both kinds) otherwise; None while there is no publisher to follow.

    A reliable publisher is worth following: best-effort readers of large frames (1080p raw)
    lose most of them even on one machine, and /diagnostics cannot see that loss."""
    if not publishers:
        return None
    reliable = all(p == ReliabilityPolicy.RELIABLE for p in publishers)
    return "reliable" if reliable else "sensor_data"


def output_qos_profile(depth: int) -> QoSProfile:
    """Reliable outputs: compatible with reliable and best-effort subscribers (rviz, bag)."""
    return _volatile(depth, ReliabilityPolicy.RELIABLE)


def _volatile(depth: int, reliability: ReliabilityPolicy) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=DurabilityPolicy.VOLATILE,
    )


def camera_channels(
    cameras: tuple[str, ...],
    transport: str,
    resolve: Resolver,
    compression: Compression | None = None,
) -> list[CameraChannel]:
    """One channel per camera name (base topic 'N/image'), or one nameless channel on 'image'
    without names; `resolve` is the node's `resolve_topic_name` (see `topics`)."""
    channels = []
    for index, name in enumerate(cameras or ("",)):
        topics = camera_topics(resolve, f"{name}/image" if name else "image", transport)
        channel = CameraChannel(index, name, topics.image, topics.camera_info)
        channel.compression = compression or Compression()
        channels.append(channel)
    return channels


def create_channels(
    node: Any, settings: Settings, on_incompatible_qos: Callable[[Any], None]
) -> list[CameraChannel]:
    """The channels of `settings.cameras` with their lifecycle output publishers on `node`: per
    output its raw topic, then its compressed one (publishing order), then `camera_info`."""
    qos = output_qos_profile(settings.output_queue_depth)
    events = PublisherEventCallbacks(incompatible_qos=on_incompatible_qos)
    channels = camera_channels(
        settings.cameras, settings.input_transport, node.resolve_topic_name, settings.compression
    )
    topics: list[tuple[str, type]] = []
    for output in settings.outputs:
        topics.append((output, Image))
        if output in settings.compressed_outputs:
            topics.append((output + COMPRESSED_SUFFIX, CompressedImage))
    for channel in channels:
        for name, msg_type in topics:
            channel.publishers[name] = node.create_lifecycle_publisher(
                msg_type, channel.output_topic(name), qos, event_callbacks=events
            )
        channel.camera_info_pub = node.create_lifecycle_publisher(
            CameraInfo, channel.output_topic("camera_info"), qos, event_callbacks=events
        )
    return channels


@dataclass
class OutputSet:
    """One frame's buffers in flight: its output messages and the model's raw scores, from which
    the publisher thread computes the anomaly mode's score (off the model's thread)."""

    images: OutputImages = field(default_factory=OutputImages)
    raw: SegmentationResult | None = None  # see engine_buffers
    published: SegmentationResult | None = None  # views of the output messages

    def engine_buffers(self, height: int, width: int, unknown_score: bool) -> SegmentationResult:
        """Where the engine writes one frame: semantic and confidence straight into the output
        messages, the raw anomaly score (and, for the unknown modes, the unknown score) into
        buffers of this set, from which `anomaly_map` later writes the mode's score into the
        ~/anomaly_score message. Reused while size and need stay the same."""
        self.published = published = self.images.engine_buffers(height, width)
        raw = self.raw
        if (
            raw is None
            or raw.semantic is not published.semantic
            or (raw.unknown_score is not None) != unknown_score
        ):
            raw = SegmentationResult.empty(height, width, unknown_score)
            raw.semantic, raw.confidence = published.semantic, published.confidence
            self.raw = raw
        return raw


@dataclass
class CameraChannel:
    """One input stream and its outputs."""

    index: int
    name: str  # "" for the single-camera layout
    input_topic: str  # fully qualified
    camera_info_topic: str = ""
    # output name (or name + "/compressed") -> its publisher, in publishing order
    publishers: dict[str, Any] = field(default_factory=dict)
    subscription: Any = None
    camera_info_sub: Any = None
    camera_info: Any = None  # the newest sensor_msgs/CameraInfo of the camera, if any came
    camera_info_pub: Any = None
    subscription_qos: str = ""  # the input_qos kind of the subscription (auto decides one)
    waiting_for_publisher: bool = False  # input_qos auto and no publisher to follow yet
    stats: PipelineStats = field(default_factory=PipelineStats)
    compression: Compression = field(default_factory=Compression)
    # Output sets not in flight (see take_outputs); a deque, whose append and pop are atomic,
    # because the inference thread takes and the publisher thread gives back.
    free_outputs: deque[OutputSet] = field(default_factory=deque)

    def take_outputs(self) -> OutputSet:
        """A free output set for the next frame, the most recently used first (same size, warm
        in cache); a new one when all are in flight (at most three: one in the model, one
        waiting for the publisher, one being published, see `pipeline`)."""
        try:
            return self.free_outputs.pop()
        except IndexError:
            return OutputSet()

    def give_back(self, outputs: OutputSet) -> None:
        """`outputs` was published or discarded: its buffers may carry another frame."""
        self.free_outputs.append(outputs)

    def output_topic(self, output: str) -> str:
        return f"~/{self.name}/{output}" if self.name else f"~/{output}"

    @property
    def label(self) -> str:
        return self.name or "camera"

    def has_output_subscribers(self) -> bool:
        publishers = [*self.publishers.values(), self.camera_info_pub]
        return any(pub is not None and pub.get_subscription_count() > 0 for pub in publishers)

    def publish_outputs(
        self, outputs: OutputImages, rgb: Any, header: Any, threshold: float, alpha: float
    ) -> None:
        """Render and publish, one after the other, the outputs that have a subscriber now.

        An output nobody subscribes to is neither rendered nor published: DDS would drop it
        anyway (volatile durability, no reader), and the overlay alone costs a few ms. Each is
        published as soon as it is ready, so a subscriber of the mask does not wait for the
        overlay; a raw and a compressed subscriber of one output share its rendering."""
        for name, publisher in self.publishers.items():
            if publisher.get_subscription_count() == 0:
                continue
            if name.endswith(COMPRESSED_SUFFIX):
                output = name.removesuffix(COMPRESSED_SUFFIX)
                message = outputs.compressed(
                    output, rgb, header, threshold, alpha, self.compression
                )
            else:
                message = outputs.message(name, rgb, header, threshold, alpha)
            publisher.publish(message)
        self._publish_camera_info(header)

    def _publish_camera_info(self, header: Any) -> None:
        """The camera's calibration with the output frame's header (stamp, frame_id), so that
        consumers pair it with the outputs as they would with the camera image; nothing until
        the camera published one."""
        info, publisher = self.camera_info, self.camera_info_pub
        if info is None or publisher is None or publisher.get_subscription_count() == 0:
            return
        info.header = header
        publisher.publish(info)
