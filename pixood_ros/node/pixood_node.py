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
(the engine writes into them, see `pixood_ros.render.outputs.OutputImages`), and ONNX
Runtime's threads do not busy-wait between calls unless `ort_spin_wait` is set;
`python -m pixood_ros.speed.node_vs_engine` measures what is left of the ROS overhead.

The parts: `parameters` (the table, validation), `declaration` (start-up values checked),
`topics` (input names as image_transport derives them), `channels` (one camera's topics, QoS,
buffers), `inputs` (subscriptions), `mailbox` and `worker` (hand-over to the worker thread),
`switch` (`~/enable`), `class_info` (the model's classes), `stats`, `stamp_gaps` and
`diagnostics` (what the node reports), `main` (the process). What `~/anomaly_score` means is
the `anomaly_mode` parameter (`pixood_ros.anomaly_modes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from pixood_ros.anomaly_modes import NEEDS_UNKNOWN_SCORE, AnomalyModeError, anomaly_map, check_mode
from pixood_ros.contract import NODE_NAME
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.image_conversion import BadImage, message_to_rgb
from pixood_ros.node.channels import CameraChannel, camera_channels, output_qos_profile
from pixood_ros.node.class_info import ClassInfo
from pixood_ros.node.declaration import declare_parameters
from pixood_ros.node.diagnostics import LogThrottle, camera_status, model_status
from pixood_ros.node.inputs import CameraInputs
from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.parameters import (
    RUN_TIME_PARAMETERS,
    Settings,
    SettingsError,
    read_settings,
    run_time_value_problem,
)
from pixood_ros.node.switch import ProcessingSwitch
from pixood_ros.node.worker import FrameWorker

SegmenterFactory = Callable[[Settings], Any]


def _stamp_ns(header: Any) -> int:
    """The header stamp in nanoseconds (0: the publisher did not stamp the frame)."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _mode_problem(mode: str, segmenter: Any, settings: Settings) -> str | None:
    """Why the loaded model cannot serve anomaly `mode` (one line naming the fix), or None."""
    try:
        check_mode(mode, segmenter.info.anomaly_modes, settings.model_path.name)
    except AnomalyModeError as error:
        return str(error)
    return None


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
        self._worker: FrameWorker | None = None
        self._diagnostics_pub = None
        self._diagnostics_timer = None
        self._input_timer = None
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._inputs = CameraInputs(self, self._on_frame)
        self._switch = ProcessingSwitch(self, on_disable=self._mailbox.clear)
        self._class_info = ClassInfo(self)
        self._lifecycle_label = "unconfigured"
        self._log_throttle = LogThrottle()
        self._read_run_time_parameters()
        self.add_post_set_parameters_callback(self._apply_dynamic_parameters)
        self.add_on_set_parameters_callback(self._check_dynamic_parameters)

    # --- parameters -------------------------------------------------------------------------

    def _read_run_time_parameters(self) -> None:
        self._threshold = float(self.get_parameter("threshold").value)
        self._overlay_alpha = float(self.get_parameter("overlay_alpha").value)
        self._anomaly_mode = str(self.get_parameter("anomaly_mode").value)

    def _check_dynamic_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name not in RUN_TIME_PARAMETERS:
                continue
            problem = run_time_value_problem(parameter.name, parameter.value)
            if problem is None and parameter.name == "anomaly_mode" and self.settings:
                problem = _mode_problem(parameter.value, self.segmenter, self.settings)
            if problem is not None:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    def _apply_dynamic_parameters(self, parameters: list[Parameter]) -> None:
        for parameter in parameters:
            if parameter.name == "threshold":
                self._threshold = float(parameter.value)
                self.get_logger().info(f"anomaly threshold set to {self._threshold:.3f}")
            elif parameter.name == "overlay_alpha":
                self._overlay_alpha = float(parameter.value)
            elif parameter.name == "anomaly_mode":
                self._anomaly_mode = str(parameter.value)
                self.get_logger().info(f"anomaly mode set to {self._anomaly_mode}")

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
        problem = _mode_problem(settings.anomaly_mode, segmenter, settings)
        if problem is not None:
            self.get_logger().error(f"cannot configure: {problem}")
            return TransitionCallbackReturn.FAILURE
        self.settings, self.segmenter = settings, segmenter
        self._read_run_time_parameters()
        self._create_channels(settings)
        if getattr(segmenter, "info", None) is not None:
            self._class_info.announce(segmenter.info)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(
            settings.diagnostics_period,
            self.publish_diagnostics,
            callback_group=self._timer_group,
        )
        provider = getattr(segmenter, "active_provider", "unknown")
        self.get_logger().info(
            f"configured: model {settings.model_path} on {provider}, "
            f"{len(self.channels)} camera(s), {settings.input_transport} input via "
            f"{settings.input_qos} QoS, outputs {', '.join(settings.outputs)}"
        )
        self._lifecycle_label = "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        for channel in self.channels:
            channel.stats.reset()
        self._worker = FrameWorker(self._mailbox, self._handle_frame)
        self._worker.start()
        assert self.settings is not None
        period = self._inputs.check_period(self.settings)
        if period is not None:
            self._input_timer = self.create_timer(
                period, self._update_inputs, callback_group=self._timer_group
            )
        self._update_inputs()
        self._lifecycle_label = "active"
        self.get_logger().info(
            "active: listening on " + ", ".join(c.input_topic for c in self.channels)
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
        qos = output_qos_profile(settings.output_queue_depth)
        events = PublisherEventCallbacks(incompatible_qos=self._on_incompatible_output_qos)
        self.channels = camera_channels(
            settings.cameras, settings.input_transport, self.resolve_topic_name
        )
        for channel in self.channels:
            for output in settings.outputs:
                channel.publishers[output] = self.create_lifecycle_publisher(
                    Image, channel.output_topic(output), qos, event_callbacks=events
                )
            channel.camera_info_pub = self.create_lifecycle_publisher(
                CameraInfo, channel.output_topic("camera_info"), qos, event_callbacks=events
            )

    def _update_inputs(self) -> None:
        if self.settings is not None:
            self._inputs.update(self.channels, self.settings)

    def _stop_inputs(self) -> None:
        if self._input_timer is not None:
            self.destroy_timer(self._input_timer)
            self._input_timer = None
        for channel in self.channels:
            self._inputs.unsubscribe(channel)
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def _release(self) -> None:
        self._class_info.withdraw()
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_pub = None
        for channel in self.channels:
            for publisher in [*channel.publishers.values(), channel.camera_info_pub]:
                self.destroy_lifecycle_publisher(publisher)
        self.channels = []
        self.segmenter = None
        self.settings = None

    # --- data path --------------------------------------------------------------------------

    def _on_frame(self, channel: CameraChannel, msg: Any) -> None:
        received = time.monotonic()
        channel.stats.frame_received(received, _stamp_ns(msg.header))
        if not self._switch.enabled:
            return
        if self._mailbox.put(channel.index, (msg, received)):
            channel.stats.frame_dropped()

    def _handle_frame(self, index: int, item: tuple[Any, float]) -> None:
        """Worker thread: one frame from the mailbox; no error may end the worker."""
        msg, received = item
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
            rgb = message_to_rgb(msg, max_pixels=settings.max_pixels)
        except BadImage as error:
            channel.stats.bad_frame(error.kind)
            self._log_throttled(channel, error.kind, f"skipping bad frame: {error}")
            return
        height, width = rgb.shape[:2]
        mode = self._anomaly_mode
        # The engine writes straight into the reused output messages (see OutputImages) and the
        # channel's raw-score buffers; the mode's score goes into the ~/anomaly_score message.
        raw = channel.engine_buffers(height, width, mode in NEEDS_UNKNOWN_SCORE)
        try:
            segmenter(rgb, out=raw)
        except ModelError as error:
            channel.stats.processing_error(str(error))
            self._log_throttled(channel, "inference", f"inference failed: {error}")
            return
        published = channel.outputs.engine_buffers(height, width)
        anomaly_map(raw, mode, segmenter.info.eval_labels, out=published.anomaly_score)
        if not self._switch.enabled:
            return  # disabled while this frame was in the model
        channel.publish_outputs(rgb, msg.header, self._threshold, self._overlay_alpha)
        channel.stats.frame_published(time.monotonic() - received, self._age_of(msg.header))

    def _age_of(self, header: Any) -> float | None:
        stamp = _stamp_ns(header)
        if stamp == 0:
            return None  # publisher did not stamp the frame
        return (self.get_clock().now().nanoseconds - stamp) / 1e9

    def _log_throttled(self, channel: CameraChannel, kind: str, message: str) -> None:
        """First occurrence of a kind per camera is logged, then once per period."""
        if not self._log_throttle.allow((channel.label, kind)):
            return
        count = channel.stats.snapshot().bad_by_kind.get(kind, 0)
        suffix = f" ({count} so far)" if count > 1 else ""
        self.get_logger().warning(f"[{channel.label}] {message}{suffix}")

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
        """One status for the model and one per camera (each call starts a new drop-ratio
        period)."""
        name, lifecycle = self.get_fully_qualified_name(), self._lifecycle_label
        enabled = self._switch.enabled
        statuses = [
            model_status(name, lifecycle, self.segmenter, self.settings, self._threshold, enabled)
        ]
        ratio = self.settings.drop_warn_ratio if self.settings else 1.0
        for channel in self.channels:
            snap = channel.stats.report()
            statuses.append(camera_status(name, lifecycle, channel, snap, ratio, enabled))
        return statuses
