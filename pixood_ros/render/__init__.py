"""Pictures of model outputs, without ROS: `outputs` (the node's output images and its rviz
overlay, as messages of any Image class), `pictures` (mask, plot.py-style overlay, heat map,
semantic colours, side-by-side video frames) and `video` (the project's one video writer).
Nothing here imports rclpy, so offline tools render exactly what the node publishes."""
