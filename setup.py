"""ament_python package that also installs with plain pip.

`colcon build` installs launch/config files under share/pixood_ros (the ROS way) and the console
scripts under lib/pixood_ros (setup.cfg). `pip install .` installs the same data files under
<prefix>/share/pixood_ros and the console scripts on PATH.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "pixood_ros"

RUNTIME_REQUIRES = [
    "numpy>=1.24",
    # headless: no Qt/libGL needed on robots and CI machines; same cv2 API.
    "opencv-python-headless>=4.8",
    "onnxruntime-gpu>=1.18; platform_machine == 'x86_64'",
    "onnxruntime>=1.18; platform_machine != 'x86_64'",
    "onnx>=1.16",
    "rosbags>=0.10",
    # ISA-L deflate for the bag's 16-bit score PNGs (pixood_ros/bag/png16.py; ~5x zlib's speed)
    "isal>=1.6",
    "pyyaml>=6",
    "tqdm>=4.60",
    "matplotlib>=3.7",
    "scikit-image>=0.21",
]

EXTRAS = {
    # The PyTorch half (training/, export, benchmarks against eager PyTorch).
    "train": [
        "torch>=2.5",
        "torchvision>=0.20",
        "timm>=1.0",
        "onnxscript>=0.1",
        "scipy>=1.10",
        "safetensors>=0.4",
    ],
    # ROS 2 Kilted client libraries as pip wheels, for machines without a ROS install.
    "ros": [
        "ros-kilted-rclpy[fastrtps]",
        "ros-kilted-sensor-msgs",
        "ros-kilted-std-msgs",
        "ros-kilted-diagnostic-msgs",
        "ros-kilted-lifecycle-msgs",
        "ros-kilted-std-srvs",
    ],
    # SMIYC submission files (pixood-smiyc writes HDF5, as the SMIYC toolkit reads them).
    "smiyc": ["h5py>=3"],
    "dev": [
        "h5py>=3",
        "pytest>=8",
        "pytest-timeout>=2.3",
        "ruff>=0.6",
        "scikit-learn>=1.3",
        # reference implementation the image-conversion tests compare against
        "rosbags-image>=0.10",
        "scipy>=1.10",
    ],
}


def data_files() -> list[tuple[str, list[str]]]:
    share = f"share/{PACKAGE}"
    return [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (share, ["package.xml", "LICENSE"]),
        (f"{share}/launch", sorted(glob("launch/*.launch.py"))),
        (f"{share}/config", sorted(glob("config/*.yaml") + glob("config/*.rviz"))),
        (f"{share}/config/train", sorted(glob("config/train/*.yaml"))),
        (f"{share}/checkpoints", sorted(glob("checkpoints/*.onnx") + glob("checkpoints/*.md"))),
    ]


setup(
    name=PACKAGE,
    version="0.1.0",
    description="PixOOD pixel-level out-of-distribution detection for ROS 2 camera streams",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["pixood_ros", "pixood_ros.*"])
    + ["pixood_training"]
    + [f"pixood_training.{p}" for p in find_packages(where="training")],
    package_dir={"pixood_training": "training"},
    data_files=data_files(),
    install_requires=RUNTIME_REQUIRES,
    extras_require=EXTRAS,
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "pixood_node = pixood_ros.node.main:main",
            "pixood-build-engine = pixood_ros.engine.build:main",
            "pixood-synth = pixood_ros.synth.cli:main",
            "pixood-infer = pixood_ros.infer.command:main",
            "pixood-make-bag = pixood_ros.bag.make_bag:main",
            "pixood-bag-eval = pixood_ros.bag.cli:main",
            "pixood-bravo = pixood_ros.bravo.cli:main",
            "pixood-train = pixood_training.train.cli:main",
            "pixood-export = pixood_training.export.cli:main",
            "pixood-bench = pixood_training.speed.cli:main",
            "pixood-benchmark = pixood_ros.comparison.run:main",
            "pixood-convert-official = pixood_training.convert_official.cli:main",
            "pixood-convert-internimage = pixood_training.internimage.convert:main",
            "pixood-smiyc = pixood_ros.datasets.smiyc_cli:main",
        ],
    },
)
