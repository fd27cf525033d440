"""Node vs engine throughput for `pixood-bench --node`: the node package's own benchmark
(`python -m pixood_ros.speed.node_vs_engine`), run in a subprocess because training code never
imports rclpy."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_node_benchmark(
    onnx_path: Path, size: tuple[int, int], threads: int, extra: str
) -> dict[str, Any]:
    """The node benchmark's JSON result, or its command, exit status and output tails. It runs
    at `threads` too unless `extra` names its own --threads (the later option wins)."""
    if importlib.util.find_spec("pixood_ros.speed.node_vs_engine") is None:
        return {"skipped": "pixood_ros.speed.node_vs_engine is not available"}
    result_path = onnx_path.with_name(onnx_path.stem + "_node.json")
    command = [
        sys.executable, "-m", "pixood_ros.speed.node_vs_engine", str(onnx_path),
        "--height", str(size[0]), "--width", str(size[1]), "--json", str(result_path),
        "--threads", str(threads), *shlex.split(extra),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0 and result_path.is_file():
        return {"command": command, "returncode": 0, "result": json.loads(result_path.read_text())}
    return {
        "command": command,
        "returncode": done.returncode,
        "output": done.stdout[-4000:],
        "errors": done.stderr[-2000:],
    }
