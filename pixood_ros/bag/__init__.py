"""Rosbag2 tooling: turn image folders / videos into bags (`pixood-make-bag`) and evaluate a
model by replaying a bag offline or into a running node (`pixood-bag-eval`).

Everything here reads and writes bags with the pure-Python `rosbags` library, so it works on a
machine without a ROS install; only `pixood_ros.bag.live` needs rclpy.
"""
