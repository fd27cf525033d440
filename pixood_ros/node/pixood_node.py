"""The PixOOD lifecycle node: camera images in, anomaly score / mask / semantic / confidence /
overlay images out, one shared ONNX model, /diagnostics at ~1 Hz.

Life cycle (rclpy.lifecycle): configure validates the parameters and loads the model (a missing
or invalid model fails configure with one clear error), activate subscribes and starts the
worker, deactivate unsubscribes and stops it, cleanup frees the model. With `autostart` the
node walks itself to active (see `main.py`).

Threads: subscription callbacks only drop the message into a latest-frame mailbox (cheap, never
blocks the executor); one worker thread decodes, runs the model and publishes. A frame that
arrives while the previous one is still waiting replaces it and counts as a drop, so latency
stays bounded by one inference however slow the model is.

Per frame the worker renders and publishes only the outputs that have a subscriber right now
(volatile outputs nobody reads would be dropped by DDS anyway), reuses one message per output
(the engine writes into them, see `outputs.OutputImages`), and ONNX Runtime's threads do not
busy-wait between calls unless `ort_spin_wait` is set;
`python -m pixood_ros.speed.node_vs_engine` measures
what is left of the ROS overhead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import CompressedImage, Image

from pixood_ros import image_conversion
from pixood_ros.contract import NODE_NAME
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.image_conversion import BadImage
from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.parameters import Settings, SettingsError, declare_parameters, read_settings
from pixood_ros.node.stats import PipelineStats, StatsSnapshot
from pixood_ros.render.outputs import OutputImages

# A bad-input kind is logged at its first occurrence and then at most once per this period.
BAD_INPUT_LOG_PERIOD_S = 10.0
WORKER_POLL_S = 0.1

SegmenterFactory = Callable[[Settings], Any]


def default_segmenter_factory(settings: Settings) -> Segmenter:
    """The real engine, configured from the node's parameters."""
    return Segmenter(
        settings.model_path,
        providers=list(settings.providers) or None,
        trt_cache_dir=settings.trt_cache_dir,
        warmup=settings.warmup,
        input_size=settings.input_size,
        trt_fp16=settings.trt_fp16,
        intra_op_threads=settings.intra_op_threads,
        spin_wait=settings.ort_spin_wait,
    )


def input_qos_profile(kind: str, depth: int) -> QoSProfile:
    """sensor_data = best effort (accepts every publisher); reliable = reliable only."""
    reliability = (
        ReliabilityPolicy.BEST_EFFORT if kind == "sensor_data" else ReliabilityPolicy.RELIABLE
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=DurabilityPolicy.VOLATILE,
    )


def output_qos_profile(depth: int) -> QoSProfile:
    """Reliable outputs: compatible with reliable and best-effort subscribers (rviz, bag)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


@dataclass
class CameraChannel:
    """One input stream and its outputs."""

    index: int
    name: str  # "" for the single-camera layout
    input_topic: str
    publishers: dict[str, Any] = field(default_factory=dict)
    subscription: Any = None
    stats: PipelineStats = field(default_factory=PipelineStats)
    outputs: OutputImages = field(default_factory=OutputImages)

    def output_topic(self, output: str) -> str:
        return f"~/{self.name}/{output}" if self.name else f"~/{output}"

    @property
    def label(self) -> str:
        return self.name or "camera"


class PixoodNode(LifecycleNode):
    """rclpy lifecycle node serving one or several cameras with one PixOOD model."""

    def __init__(
        self,
        node_name: str = NODE_NAME,
        *,
        segmenter_factory: SegmenterFactory | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self._segmenter_factory = segmenter_factory or default_segmenter_factory
        self.settings: Settings | None = None
        self.segmenter: Any = None
        self.channels: list[CameraChannel] = []
        self._mailbox = LatestFrameMailbox()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._diagnostics_pub = None
        self._diagnostics_timer = None
        self._lazy_timer = None
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._lifecycle_label = "unconfigured"
        self._bad_log_times: dict[tuple[str, str], float] = {}
        self._bad_log_lock = threading.Lock()
        self._threshold = float(self.get_parameter("threshold").value)
        self._overlay_alpha = float(self.get_parameter("overlay_alpha").value)
        self.add_post_set_parameters_callback(self._apply_dynamic_parameters)
        self.add_on_set_parameters_callback(self._check_dynamic_parameters)

    # --- parameters -------------------------------------------------------------------------

    def _check_dynamic_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name in ("threshold", "overlay_alpha"):
                value = parameter.value
                if not isinstance(value, float) or not 0.0 <= value <= 1.0:
                    return SetParametersResult(
                        successful=False, reason=f"{parameter.name} must be a float in [0, 1]"
                    )
        return SetParametersResult(successful=True)

    def _apply_dynamic_parameters(self, parameters: list[Parameter]) -> None:
        for parameter in parameters:
            if parameter.name == "threshold":
                self._threshold = float(parameter.value)
                self.get_logger().info(f"anomaly threshold set to {self._threshold:.3f}")
            elif parameter.name == "overlay_alpha":
                self._overlay_alpha = float(parameter.value)

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def lifecycle_state(self) -> str:
        return self._lifecycle_label

    # --- lifecycle --------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return self._configure(state)
        except Exception as error:
            self.get_logger().error(f"cannot configure: {type(error).__name__}: {error}")
            self._release()
            return TransitionCallbackReturn.FAILURE

    def _configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = read_settings(self)
        except SettingsError as error:
            self.get_logger().error(f"cannot configure: {error}")
            return TransitionCallbackReturn.FAILURE
        image_conversion.set_cv_bridge_enabled(settings.use_cv_bridge)
        try:
            segmenter = self._segmenter_factory(settings)
        except ModelError as error:
            self.get_logger().error(f"cannot configure: {error}")
            return TransitionCallbackReturn.FAILURE
        except Exception as error:
            self.get_logger().error(
                f"cannot configure: loading {settings.model_path} failed: "
                f"{type(error).__name__}: {error}"
            )
            return TransitionCallbackReturn.FAILURE
        self.settings, self.segmenter = settings, segmenter
        self._threshold = float(self.get_parameter("threshold").value)
        self._overlay_alpha = float(self.get_parameter("overlay_alpha").value)
        self._create_channels(settings)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(
            settings.diagnostics_period,
            self.publish_diagnostics,
            callback_group=self._timer_group,
        )
        provider = getattr(segmenter, "active_provider", "unknown")
        cv_bridge = "cv_bridge" if image_conversion.cv_bridge_active() else "built-in decoder"
        self.get_logger().info(
            f"configured: model {settings.model_path} on {provider}, "
            f"{len(self.channels)} camera(s), {settings.input_transport} input via "
            f"{settings.input_qos} QoS, {cv_bridge}, outputs {', '.join(settings.outputs)}"
        )
        self._lifecycle_label = "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        for channel in self.channels:
            channel.stats.reset()
        self._start_worker()
        assert self.settings is not None
        if self.settings.lazy_subscription:
            self._lazy_timer = self.create_timer(
                self.settings.lazy_check_period,
                self._update_lazy_subscriptions,
                callback_group=self._timer_group,
            )
            self._update_lazy_subscriptions()
        else:
            for channel in self.channels:
                self._subscribe(channel)
        self._lifecycle_label = "active"
        self.get_logger().info(
            "active: listening on " + ", ".join(self._resolved_input(c) for c in self.channels)
        )
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._lifecycle_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._lifecycle_label = "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release()
        self._lifecycle_label = "finalized"
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error while in state {state.label}; releasing resources")
        self._stop_inputs()
        self._release()
        self._lifecycle_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def autostart(self) -> bool:
        """configure + activate; True when the node ended up active."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    # --- set-up helpers ---------------------------------------------------------------------

    def _create_channels(self, settings: Settings) -> None:
        suffix = "image/compressed" if settings.input_transport == "compressed" else "image"
        names = settings.cameras or ("",)
        qos = output_qos_profile(settings.output_queue_depth)
        events = PublisherEventCallbacks(incompatible_qos=self._on_incompatible_output_qos)
        self.channels = []
        for index, name in enumerate(names):
            channel = CameraChannel(
                index=index,
                name=name,
                input_topic=f"{name}/{suffix}" if name else suffix,
            )
            for output in settings.outputs:
                channel.publishers[output] = self.create_lifecycle_publisher(
                    Image, channel.output_topic(output), qos, event_callbacks=events
                )
            self.channels.append(channel)

    def _resolved_input(self, channel: CameraChannel) -> str:
        return self.resolve_topic_name(channel.input_topic)

    def _subscribe(self, channel: CameraChannel) -> None:
        if channel.subscription is not None:
            return
        assert self.settings is not None
        msg_type = CompressedImage if self.settings.input_transport == "compressed" else Image
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda info, c=channel: self._on_incompatible_input_qos(c, info)
        )
        channel.subscription = self.create_subscription(
            msg_type,
            channel.input_topic,
            lambda msg, c=channel: self._on_frame(c, msg),
            input_qos_profile(self.settings.input_qos, self.settings.input_queue_depth),
            callback_group=self._input_group,
            event_callbacks=events,
        )

    def _unsubscribe(self, channel: CameraChannel) -> None:
        if channel.subscription is not None:
            self.destroy_subscription(channel.subscription)
            channel.subscription = None

    def _update_lazy_subscriptions(self) -> None:
        for channel in self.channels:
            wanted = any(pub.get_subscription_count() > 0 for pub in channel.publishers.values())
            if wanted and channel.subscription is None:
                self._subscribe(channel)
                self.get_logger().info(
                    f"output subscribed: listening on {self._resolved_input(channel)}"
                )
            elif not wanted and channel.subscription is not None:
                self._unsubscribe(channel)
                self.get_logger().info(
                    f"no output subscribers: stopped listening on {self._resolved_input(channel)}"
                )

    def _start_worker(self) -> None:
        self._stop.clear()
        self._mailbox.clear()
        self._mailbox.reopen()
        self._worker = threading.Thread(target=self._work, name="pixood_worker", daemon=True)
        self._worker.start()

    def _stop_inputs(self) -> None:
        if self._lazy_timer is not None:
            self.destroy_timer(self._lazy_timer)
            self._lazy_timer = None
        for channel in self.channels:
            self._unsubscribe(channel)
        self._stop.set()
        self._mailbox.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._mailbox.clear()

    def _release(self) -> None:
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_pub = None
        for channel in self.channels:
            for publisher in channel.publishers.values():
                self.destroy_lifecycle_publisher(publisher)
        self.channels = []
        self.segmenter = None
        self.settings = None

    # --- data path --------------------------------------------------------------------------

    def _on_frame(self, channel: CameraChannel, msg: Any) -> None:
        received = time.monotonic()
        channel.stats.frame_received(received)
        if self._mailbox.put(channel.index, (msg, received)):
            channel.stats.frame_dropped()

    def _work(self) -> None:
        while not self._stop.is_set():
            item = self._mailbox.get(timeout=WORKER_POLL_S)
            if item is None:
                continue
            index, (msg, received) = item
            channel = self.channels[index]
            try:
                self.process(channel, msg, received)
            except Exception as error:
                channel.stats.processing_error(str(error))
                self._log_throttled(channel, "error", f"frame processing failed: {error}")

    def process(self, channel: CameraChannel, msg: Any, received: float) -> None:
        """Decode, segment and publish one frame (runs in the worker thread)."""
        settings, segmenter = self.settings, self.segmenter
        if settings is None or segmenter is None:
            return
        try:
            if isinstance(msg, CompressedImage):
                rgb = image_conversion.compressed_to_rgb(msg, max_pixels=settings.max_pixels)
            else:
                rgb = image_conversion.image_to_rgb(msg, max_pixels=settings.max_pixels)
        except BadImage as error:
            channel.stats.bad_frame(error.kind)
            self._log_throttled(channel, error.kind, f"skipping bad frame: {error}")
            return
        height, width = rgb.shape[:2]
        # The engine writes straight into the reused output messages (see OutputImages).
        buffers = channel.outputs.engine_buffers(height, width)
        try:
            segmenter(rgb, out=buffers)
        except ModelError as error:
            channel.stats.processing_error(str(error))
            self._log_throttled(channel, "inference", f"inference failed: {error}")
            return
        # An output nobody subscribes to is neither rendered nor published: DDS would drop it
        # anyway (volatile durability, no reader), and the overlay alone costs a few ms.
        wanted = [
            (publisher, name)
            for name, publisher in channel.publishers.items()
            if publisher.get_subscription_count() > 0
        ]
        # Render everything first, then publish: while rendering (numpy, GIL released and
        # re-taken per operation) no subscriber in this process is busy taking our outputs.
        messages = [
            channel.outputs.message(name, rgb, msg.header, self._threshold, self._overlay_alpha)
            for _, name in wanted
        ]
        for (publisher, _), message in zip(wanted, messages, strict=True):
            publisher.publish(message)
        channel.stats.frame_published(time.monotonic() - received, self._age_of(msg.header))

    def _age_of(self, header: Any) -> float | None:
        stamp = header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return None  # publisher did not stamp the frame
        now = self.get_clock().now().nanoseconds
        return (now - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9

    def _log_throttled(self, channel: CameraChannel, kind: str, message: str) -> None:
        """First occurrence of a kind per camera is logged, then once per period."""
        key = (channel.label, kind)
        now = time.monotonic()
        with self._bad_log_lock:
            last = self._bad_log_times.get(key)
            if last is not None and now - last < BAD_INPUT_LOG_PERIOD_S:
                return
            self._bad_log_times[key] = now
        count = channel.stats.snapshot().bad_by_kind.get(kind, 0)
        suffix = f" ({count} so far)" if count > 1 else ""
        self.get_logger().warning(f"[{channel.label}] {message}{suffix}")

    def _on_incompatible_input_qos(self, channel: CameraChannel, info: Any) -> None:
        self.get_logger().warning(
            f"a publisher on {self._resolved_input(channel)} has incompatible QoS "
            f"(policy {info.last_policy_kind}); with input_qos=reliable only reliable "
            "publishers connect, use input_qos=sensor_data for best-effort cameras"
        )

    def _on_incompatible_output_qos(self, info: Any) -> None:
        self.get_logger().warning(
            f"a subscriber of an output topic requested incompatible QoS "
            f"(policy {info.last_policy_kind})"
        )

    # --- diagnostics ------------------------------------------------------------------------

    def publish_diagnostics(self) -> None:
        if self._diagnostics_pub is None:
            return
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = self.diagnostic_status()
        self._diagnostics_pub.publish(array)

    def diagnostic_status(self) -> list[DiagnosticStatus]:
        """One status for the model and one per camera."""
        statuses = [self._model_status()]
        for channel in self.channels:
            statuses.append(self._camera_status(channel, channel.stats.snapshot()))
        return statuses

    def _model_status(self) -> DiagnosticStatus:
        status = DiagnosticStatus(name=f"{self.get_name()}: model")
        segmenter, settings = self.segmenter, self.settings
        provider = getattr(segmenter, "active_provider", "none")
        status.hardware_id = str(settings.model_path) if settings else ""
        values = {"lifecycle_state": self._lifecycle_label, "execution_provider": provider}
        if settings is not None:
            values["requested_providers"] = ", ".join(settings.providers) or "default"
            values["threshold"] = f"{self._threshold:.3f}"
        info = getattr(segmenter, "info", None)
        if info is not None:
            values["scorer"] = str(info.scorer)
            values["classes"] = str(len(info.class_names))
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        if segmenter is None:
            status.level, status.message = DiagnosticStatus.ERROR, "no model loaded"
        elif settings and settings.providers and provider != _full_provider(settings.providers[0]):
            status.level = DiagnosticStatus.WARN
            status.message = f"running on {provider}, not the requested {settings.providers[0]}"
        else:
            status.level, status.message = DiagnosticStatus.OK, f"running on {provider}"
        return status

    def _camera_status(self, channel: CameraChannel, snap: StatsSnapshot) -> DiagnosticStatus:
        topic = self._resolved_input(channel)
        status = DiagnosticStatus(name=f"{self.get_name()}: {channel.label}", hardware_id=topic)
        values = {
            "input_topic": topic,
            "subscribed": str(channel.subscription is not None).lower(),
            "input_rate_hz": f"{snap.input_rate_hz:.2f}",
            "output_rate_hz": f"{snap.output_rate_hz:.2f}",
            "processing_latency_ms_mean": _fmt_ms(snap.processing_ms_mean),
            "processing_latency_ms_max": _fmt_ms(snap.processing_ms_max),
            "end_to_end_latency_ms_mean": _fmt_ms(snap.end_to_end_ms_mean),
            "end_to_end_latency_ms_max": _fmt_ms(snap.end_to_end_ms_max),
            "frames_received": str(snap.received),
            "frames_processed": str(snap.processed),
            "frames_dropped": str(snap.dropped),
            "bad_frames": str(snap.bad_total),
            "processing_errors": str(snap.errors),
        }
        for kind in image_conversion.BAD_IMAGE_KINDS:
            values[f"bad_frames_{kind}"] = str(snap.bad_by_kind.get(kind, 0))
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        if self._lifecycle_label != "active":
            status.level, status.message = DiagnosticStatus.OK, f"node {self._lifecycle_label}"
        elif channel.subscription is None:
            status.level, status.message = DiagnosticStatus.OK, "idle: no output subscribers"
        elif snap.errors and snap.processed == 0:
            status.level, status.message = DiagnosticStatus.ERROR, f"failing: {snap.last_error}"
        elif snap.bad_in_window:
            status.level = DiagnosticStatus.WARN
            status.message = f"{snap.bad_in_window} bad frame(s) in the last {snap.window_s:.0f} s"
        elif snap.received == 0:
            status.level, status.message = DiagnosticStatus.WARN, f"no images on {topic} yet"
        else:
            status.level = DiagnosticStatus.OK
            status.message = f"{snap.output_rate_hz:.1f} Hz out of {snap.input_rate_hz:.1f} Hz in"
        return status


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _full_provider(name: str) -> str:
    from pixood_ros.engine.providers import canonical_provider

    try:
        return canonical_provider(name)
    except ModelError:
        return name
