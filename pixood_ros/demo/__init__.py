"""The demo (`python -m pixood_ros.demo`, `make demo`): synthetic frames ▶ bag ▶ the real node ▶
recorded outputs ▶ report. `run` drives it, `node_process` owns the node's process, `outputs`
draws what the node published, `report` writes the results."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The demo's command line (imported on call: the node's child process imports this package
    too and must start quickly)."""
    from pixood_ros.demo.run import main as run_main

    return run_main(argv)
