"""Pictures of model outputs, without ROS, in one visual language: `overlay` (the anomaly colour
scale and the overlay: camera untouched below the threshold, flagged pixels coloured by score),
`outputs` (the node's output images, as messages of any Image class), `pictures` (mask, heat map,
semantic colours, the side-by-side video frame), `legend` (titles, colour bar, class legend) and
`video` (the project's one video writer). Nothing here imports rclpy, so offline tools render
exactly what the node publishes."""
