"""pixood_ros: pixel-level out-of-distribution detection (PixOOD) for ROS 2 camera streams.

This is the runtime half: it needs numpy, OpenCV, ONNX Runtime and rosbags, never PyTorch.
The training half lives in the ``pixood_training`` package (directory ``training/``).
"""

__version__ = "0.1.0"
