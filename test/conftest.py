"""Shared pytest set-up.

Every ROS process started by the tests keeps DDS traffic on loopback and uses a domain id of its
own, so parallel runs on one machine (and other users of the network) never see each other.
"""

from __future__ import annotations

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
