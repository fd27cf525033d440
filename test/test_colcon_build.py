"""The package builds as a ROS 2 workspace the way a robot builds it (`colcon build`).

colcon comes from Debian (`apt-get install colcon python3-colcon-ros`); `.ci/run` installs it.
Where it is missing (a developer machine without it) the test is skipped with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = [
    "setup.py",
    "setup.cfg",
    "package.xml",
    "LICENSE",
    "resource",
    "pixood_ros",
    "training",
    "launch",
    "config",
    "checkpoints",
]

pytestmark = pytest.mark.skipif(shutil.which("colcon") is None, reason="colcon is not installed")


@pytest.mark.slow
def test_colcon_build_installs_the_ros_layout(tmp_path):
    src = tmp_path / "src" / "pixood_ros"
    src.mkdir(parents=True)
    for name in PACKAGE_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, src / name)
    result = subprocess.run(
        ["colcon", "build", "--event-handlers", "console_direct-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    prefix = tmp_path / "install" / "pixood_ros"
    share = prefix / "share" / "pixood_ros"
    # `ros2 run pixood_ros pixood_node` looks in lib/<package>.
    assert (prefix / "lib" / "pixood_ros" / "pixood_node").is_file()
    assert (
        prefix / "share" / "ament_index" / "resource_index" / "packages" / "pixood_ros"
    ).is_file()
    assert (share / "package.xml").is_file() and (share / "LICENSE").is_file()
    for launch_file in (ROOT / "launch").glob("*.launch.py"):
        assert (share / "launch" / launch_file.name).is_file()
    for config_file in [*(ROOT / "config").glob("*.yaml"), *(ROOT / "config").glob("*.rviz")]:
        assert (share / "config" / config_file.name).is_file()
    site = next((prefix / "lib").glob("python3*/site-packages"))
    assert (site / "pixood_ros" / "__init__.py").is_file()
    assert (site / "pixood_training" / "__init__.py").is_file()
