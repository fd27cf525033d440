"""The real `pixood_node` as a child process of the demo: started, waited for, always stopped.

The demo must show the node a robot runs, so it starts `python -m pixood_ros.node.main` in a
process of its own (own session, log in a file, discovery on loopback, a demo-specific
ROS_DOMAIN_ID) and talks to it over ROS 2 only. Stopping is SIGINT (the node shuts its lifecycle
down cleanly), then SIGTERM, then SIGKILL. On Linux the child also asks the kernel to send it
SIGINT when the demo process dies, so not even a SIGKILLed demo leaves a node behind.

`python -m pixood_ros.demo.node_process --parent PID -- NODE_ARGS...` is that child: it arms the
guard
and then runs the node's own `main`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

STOP_GRACE_S = 10.0
OUTPUT_QUEUE_DEPTH = 10


class NodeError(RuntimeError):
    """The node could not be started or did not come up; the message is one line."""


@contextmanager
def ros_environment(domain_id: int) -> Iterator[dict[str, str]]:
    """Loopback-only discovery and the demo's domain id, for this process and its children;
    the previous values come back afterwards (the demo may run inside a test process)."""
    wanted = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(domain_id)}
    # Fast DDS sends images of several 100 kB over UDP fragments by default; on a busy machine
    # lost fragments of reliable outputs wait for repair (median latency ~250 ms measured here
    # for 512x256 frames, vs ~30 ms with its large-data mode: shared memory + TCP on loopback).
    # A user's own choice wins.
    wanted["FASTDDS_BUILTIN_TRANSPORTS"] = os.environ.get(
        "FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"
    )
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield dict(os.environ)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def node_arguments(
    model: Path,
    image_topic: str,
    *,
    providers: Sequence[str],
    threshold: float,
    input_size: tuple[int, int] | None = None,
) -> list[str]:
    """`--ros-args` of the node: the demo model, autostart, input remapped to the bag's topic."""
    args = [
        "--ros-args",
        "-p", f"model_path:={Path(model).resolve()}",
        "-p", "autostart:=true",
        "-p", f"providers:=[{', '.join(repr(p) for p in providers)}]",
        "-p", f"threshold:={float(threshold)!r}",
        "-r", f"image:={image_topic}",
        # the demo records every output: give slow recorders room (reliable, keep last N)
        "-p", f"output_queue_depth:={OUTPUT_QUEUE_DEPTH}",
    ]  # fmt: skip
    if input_size is not None:
        args += ["-p", f"input_height:={input_size[0]}", "-p", f"input_width:={input_size[1]}"]
    return args


class NodeProcess:
    """One running node; use as a context manager so it is stopped on every way out."""

    def __init__(self, node_args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.command = [
            sys.executable, "-m", "pixood_ros.demo.node_process",
            "--parent", str(os.getpid()), "--",
            *node_args,
        ]  # fmt: skip
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> NodeProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches the demo, which then stops the node
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return " | ".join(kept[-lines:])

    def wait_ready(self, score_topic: str, image_topic: str, timeout: float) -> float:
        """Seconds until the node subscribes to `image_topic` and publishes `score_topic`
        (configured and active: model loaded, warm-up done); NodeError when it exits or the
        time runs out."""
        import rclpy

        start = time.monotonic()
        context = rclpy.Context()
        rclpy.init(context=context)
        probe = rclpy.create_node("pixood_demo_probe", context=context)
        # With input_qos auto the node subscribes only once a camera publishes: stand in for it.
        probe.create_publisher(_image_type(image_topic), image_topic, 1)
        try:
            while time.monotonic() - start < timeout:
                if not self.alive():
                    code = self.process.returncode if self.process is not None else None
                    raise NodeError(
                        f"the node exited with code {code} while starting "
                        f"(log {self.log_path}: {self.log_tail()})"
                    )
                ready = (
                    probe.count_publishers(score_topic) > 0
                    and probe.count_subscribers(image_topic) > 0
                )
                if ready:
                    return time.monotonic() - start
                time.sleep(0.1)
        finally:
            probe.destroy_node()
            rclpy.shutdown(context=context)
        raise NodeError(
            f"the node did not come up within {timeout:g} s (log {self.log_path}: "
            f"{self.log_tail()})"
        )

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL; returns the exit code (None if never started)."""
        process = self.process
        if process is None:
            return None
        for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            try:
                process.send_signal(sig)
                process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        self.returncode = process.wait()
        return self.returncode

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent(parent: int) -> None:
    """Linux: SIGINT to this process when the demo dies; exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGINT))
    if os.getppid() != parent:
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: `--parent PID -- NODE_ARGS...` (not a user command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] != "--parent" or argv[2] != "--":
        print(
            "usage: python -m pixood_ros.demo.node_process --parent PID -- NODE_ARGS...",
            file=sys.stderr,
        )
        return 2
    _die_with_parent(int(argv[1]))
    from pixood_ros.node.main import main as node_main

    return node_main(argv[3:])


def _image_type(topic: str) -> type:
    from sensor_msgs.msg import CompressedImage, Image

    return CompressedImage if topic.endswith("/compressed") else Image


if __name__ == "__main__":
    sys.exit(main())
