"""The old home of `pixood-bag-eval`'s entry point (setup.py names `pixood_ros.bag.evaluate:main`);
the command now lives in `pixood_ros.bag.cli`."""

from pixood_ros.bag.cli import main

__all__ = ["main"]
