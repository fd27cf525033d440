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
    needed = {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "lifecycle_msgs", "launch_ros"}
    assert needed <= deps, f"package.xml lacks {sorted(needed - deps)}"


def _exec_depends() -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text for e in root.findall("exec_depend")}


def test_package_xml_lists_what_the_runtime_imports():
    """Every ROS package and rosdep-keyed library the runtime imports is an exec_depend, so
    `rosdep install` brings it; rviz2 is not (a headless robot does not need it)."""
    deps = _exec_depends()
    imports = _imported_top_level_modules(ROOT / "pixood_ros")
    ros_suffixes = ("_msgs", "_srvs", "_interfaces")
    ros_packages = {
        name
        for name in imports
        if name.endswith(ros_suffixes) or name in ("rclpy", "launch", "launch_ros")
    }
    assert ros_packages <= deps, f"package.xml lacks {sorted(ros_packages - deps)}"
    rosdep_keys = {
        "numpy": "python3-numpy",
        "cv2": "python3-opencv",
        "yaml": "python3-yaml",
        "tqdm": "python3-tqdm",
        "matplotlib": "python3-matplotlib",
        "skimage": "python3-skimage",
    }
    wanted = {key for module, key in rosdep_keys.items() if module in imports}
    assert {"std_srvs", "python3-matplotlib"} <= deps
    assert wanted <= deps, f"package.xml lacks {sorted(wanted - deps)}"
    assert "rviz2" not in deps


def test_license_file_matches_the_declared_license():
    declared = ET.parse(ROOT / "package.xml").getroot().findtext("license")
    setup_text = (ROOT / "setup.py").read_text()
    assert declared == "Apache-2.0" and 'license="Apache-2.0"' in setup_text
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_ament_resource_marker_and_versions_agree():
    assert (ROOT / "resource" / "pixood_ros").is_file()
    import pixood_ros
    import pixood_training

    xml_version = ET.parse(ROOT / "package.xml").getroot().findtext("version")
    assert pixood_ros.__version__ == pixood_training.__version__ == xml_version


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for the runtime and the training package."""
    modules: dict[str, Path] = {}
    for package, root in (
        ("pixood_ros", ROOT / "pixood_ros"),
        ("pixood_training", ROOT / "training"),
    ):
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports anywhere in its file (lazy imports inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_import_circles():
    """A newcomer can read the modules bottom-up: no two modules need each other."""
    modules = _module_files()
    graph = {name: _imports_of(name, path, modules) for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is not a circle with them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
