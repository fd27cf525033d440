"""Quality comparison (`pixood-benchmark`): every model or scorer on the same frames, with the
same metrics (AP, AUROC, FPR95, components, mIoU, BRAVO Index). Speed lives in `pixood_ros.speed`
and `pixood_training.speed` (`pixood-bench`)."""
