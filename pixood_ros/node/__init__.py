"""The ROS 2 node (`pixood_node`): rclpy lifecycle node around `pixood_ros.engine.Segmenter`.

Only this sub-package imports rclpy; the rest of `pixood_ros` works without ROS.
"""
