"""The ROS 2 node (`pixood_node`): an rclpy lifecycle node around `pixood_ros.engine.Segmenter`.

`main` is the command, `pixood_node` the node (lifecycle and data path); its parts are
`parameters`, `declaration`, `topics`, `channels`, `inputs`, `worker`, `mailbox`, `switch`,
`class_info`, `stats`, `stamp_gaps`, `diagnostics` and `memory`; `launch_arguments` and
`rviz_config` serve the launch files. Elsewhere in `pixood_ros` rclpy is imported only
inside the functions that talk to a live ROS graph, so the rest works without ROS.
"""
