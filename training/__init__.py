"""pixood_training: the PyTorch half of pixood_ros (backbone, decoder, condensation,
decision strategy, scorers, data sets, training stages, ONNX export).

Never imports rclpy: everything here runs on a training workstation without ROS.
"""

__version__ = "0.1.0"
