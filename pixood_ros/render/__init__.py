"""Pictures of model outputs for people and for rviz, without ROS: output images, overlays,
colour maps, videos. Used by the node, pixood-infer, pixood-bag-eval and the demo."""
