"""The PixOOD lifecycle node: camera images in, anomaly score / mask / semantic / confidence /
overlay images out, one shared ONNX model, /diagnostics at ~1 Hz.

Life cycle (rclpy.lifecycle): configure validates the parameters and loads the model (a missing
or invalid model fails configure with one clear error), activate subscribes and starts the
worker, deactivate unsubscribes and stops it, cleanup frees the model. With `autostart` the
node walks itself to active (see `main.py`).

Threads: subscription callbacks only drop the message into a latest-frame mailbox (cheap, never
blocks the executor); an inference thread decodes and runs the model, a publisher thread renders
and publishes the previous frame meanwhile (`pipeline`). A frame that arrives while the
previous one is still waiting replaces it and counts as a drop, so latency stays bounded by one
inference however slow the model is.

Per frame the publisher renders and publishes only the outputs that have a subscriber right now
(volatile outputs nobody reads would be dropped by DDS anyway), each as soon as it is ready, into
reused messages (the engine writes into them, see `pixood_ros.render.outputs.OutputImages`);
ONNX Runtime's threads do not busy-wait between calls unless `ort_spin_wait` is set;
`python -m pixood_ros.speed.node_vs_engine` measures what is left of the ROS overhead.

The parts: `parameters` (the table, validation), `declaration` (start-up values checked),
`topics` (input names as image_transport derives them), `channels` (one camera's topics, QoS,
buffers), `inputs` (subscriptions), `mailbox`, `worker` and `pipeline` (the two threads),
`switch` (`~/enable`), `class_info` (the model's classes), `stats`, `stamp_gaps` and
`diagnostics` (what the node reports), `main` (the process). What `~/anomaly_score` means is
the `anomaly_mode` parameter (`pixood_ros.anomaly_modes`).
"""

from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from pixood_ros.anomaly_modes import NEEDS_UNKNOWN_SCORE, anomaly_map
from pixood_ros.contract import NODE_NAME
from pixood_ros.engine import ModelError
from pixood_ros.image_conversion import BadImage, message_to_rgb
from pixood_ros.node.channels import CameraChannel, create_channels
from pixood_ros.node.class_info import ClassInfo
from pixood_ros.node.declaration import declare_parameters
from pixood_ros.node.diagnostics import LogThrottle, camera_status, model_status
from pixood_ros.node.inputs import CameraInputs
from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.model import SegmenterFactory, default_segmenter_factory, mode_problem
from pixood_ros.node.parameters import (
    RUN_TIME_PARAMETERS,
    Settings,
    SettingsError,
    read_settings,
    run_time_value_problem,
)
from pixood_ros.node.pipeline import FramePipeline, FrameResult
from pixood_ros.node.switch import ProcessingSwitch


def _stamp_ns(header: Any) -> int:
    """The header stamp in nanoseconds (0: the publisher did not stamp the frame)."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


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
        self._pipeline: FramePipeline | None = None
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
                problem = mode_problem(parameter.value, self.segmenter, self.settings)
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
        problem = mode_problem(settings.anomaly_mode, segmenter, settings)
        if problem is not None:
            self.get_logger().error(f"cannot configure: {problem}")
            return TransitionCallbackReturn.FAILURE
        self.settings, self.segmenter = settings, segmenter
        self._read_run_time_parameters()
        self.channels = create_channels(self, settings, self._on_incompatible_output_qos)
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
        self._pipeline = FramePipeline(
            self._mailbox, self._infer_frame, self._publish_frame, self._discard_result
        )
        self._pipeline.start()
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

    def _update_inputs(self) -> None:
        if self.settings is not None:
            self._inputs.update(self.channels, self.settings)

    def _stop_inputs(self) -> None:
        if self._input_timer is not None:
            self.destroy_timer(self._input_timer)
            self._input_timer = None
        for channel in self.channels:
            self._inputs.unsubscribe(channel)
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None

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

    def _infer_frame(self, index: int, item: tuple[Any, float]) -> FrameResult | None:
        """Inference thread: one frame from the mailbox; no error may end the thread."""
        msg, received = item
        channel = self.channels[index]
        try:
            return self.infer(channel, msg, received)
        except ModelError as error:
            kind, problem = "inference", f"inference failed: {error}"
        except Exception as error:
            kind, problem = "error", f"frame processing failed: {error}"
        channel.stats.processing_error(problem)
        self._log_throttled(channel, kind, problem)
        return None

    def infer(self, channel: CameraChannel, msg: Any, received: float) -> FrameResult | None:
        """Decode and segment one frame into a free output set of the channel; None for a bad
        frame (counted)."""
        settings, segmenter = self.settings, self.segmenter
        if settings is None or segmenter is None:
            return None
        try:
            rgb = message_to_rgb(msg, max_pixels=settings.max_pixels)
        except BadImage as error:
            channel.stats.bad_frame(error.kind)
            self._log_throttled(channel, error.kind, f"skipping bad frame: {error}")
            return None
        mode = self._anomaly_mode
        outputs = channel.take_outputs()
        try:
            # The engine writes straight into the output messages (see OutputImages) and the
            # set's raw-score buffers; the publisher thread applies the anomaly mode.
            segmenter(rgb, out=outputs.engine_buffers(*rgb.shape[:2], mode in NEEDS_UNKNOWN_SCORE))
        except BaseException:
            channel.give_back(outputs)
            raise
        return FrameResult(outputs, mode, rgb, msg.header, received)

    def _publish_frame(self, index: int, result: FrameResult) -> None:
        """Publisher thread: render and publish one frame's outputs; no error may end it."""
        channel = self.channels[index]
        try:
            if not self._switch.enabled:
                return  # disabled while this frame was in the model
            outputs = result.outputs
            labels = self.segmenter.info.eval_labels
            anomaly_map(outputs.raw, result.mode, labels, out=outputs.published.anomaly_score)
            channel.publish_outputs(
                outputs.images, result.rgb, result.header, self._threshold, self._overlay_alpha
            )
            channel.stats.frame_published(
                time.monotonic() - result.received, self._age_of(result.header)
            )
        except Exception as error:
            channel.stats.processing_error(f"publishing failed: {error}")
            self._log_throttled(channel, "error", f"publishing failed: {error}")
        finally:
            channel.give_back(result.outputs)

    def _discard_result(self, index: int, result: FrameResult) -> None:
        """A result that will not be published (a newer one replaced it): a dropped frame."""
        channel = self.channels[index]
        channel.stats.frame_dropped()
        channel.give_back(result.outputs)

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
