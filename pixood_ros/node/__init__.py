"""The ROS 2 node (`pixood_node`): an rclpy lifecycle node around `pixood_ros.engine.Segmenter`.

`main` is the command, `pixood_node` the node (lifecycle and data path); its parts are
`parameters`, `channels`, `inputs`, `worker`, `mailbox`, `stats`, `diagnostics` and `memory`;
`launch_arguments` serves the launch files. Elsewhere in `pixood_ros` rclpy is imported only
inside the functions that talk to a live ROS graph, so the rest works without ROS.
"""
