"""The node's on/off switch, `~/enable` (std_srvs/SetBool), beside the lifecycle.

Pausing through the lifecycle (deactivate) drops the subscriptions and the worker; a robot that
only wants to stop spending the GPU for a while (docked, another task needs it) would rather
keep everything connected. Disabled, the node still receives and counts camera frames (so the
stamp-gap loss estimate stays right) but runs none through the model and publishes no outputs;
/diagnostics says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from std_srvs.srv import SetBool

SERVICE = "~/enable"


class ProcessingSwitch:
    """`enabled` as set through the `~/enable` service of `node` (enabled at start)."""

    def __init__(self, node: Any, on_disable: Callable[[], Any]) -> None:
        self.enabled = True
        self._node = node
        self._on_disable = on_disable
        self._service = node.create_service(SetBool, SERVICE, self._on_request)

    def _on_request(self, request: Any, response: Any) -> Any:
        changed = request.data != self.enabled
        self.enabled = bool(request.data)
        if not self.enabled:
            self._on_disable()  # frames waiting for the model are not served any more
        word = "enabled" if self.enabled else "disabled"
        response.success = True
        response.message = f"processing {word}" + ("" if changed else " (already)")
        if changed:
            self._node.get_logger().info(f"processing {word} through {SERVICE}")
        return response
