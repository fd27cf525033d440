"""Package layout contracts: the runtime never imports torch, training never imports rclpy,
and the ament_python package files agree with each other."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_level_modules(package_dir: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_runtime_never_imports_torch():
    imports = _imported_top_level_modules(ROOT / "pixood_ros")
    for banned in ("torch", "torchvision", "timm", "pixood_training"):
        assert banned not in imports, f"{banned} imported by {sorted(imports[banned])}"


def test_training_never_imports_rclpy():
    imports = _imported_top_level_modules(ROOT / "training")
    for banned in ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "lifecycle_msgs"):
        assert banned not in imports, f"{banned} imported by {sorted(imports[banned])}"


def test_package_xml_is_ament_python_format_3():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "pixood_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    needed = {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "cv_bridge", "launch_ros"}
    assert needed <= deps, f"package.xml lacks {sorted(needed - deps)}"


def test_ament_resource_marker_and_versions_agree():
    assert (ROOT / "resource" / "pixood_ros").is_file()
    import pixood_ros
    import pixood_training

    xml_version = ET.parse(ROOT / "package.xml").getroot().findtext("version")
    assert pixood_ros.__version__ == pixood_training.__version__ == xml_version
