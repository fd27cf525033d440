"""The header stamp of a serialized (CDR) message, read and replaced without deserialising it.

Works for every message whose first field is a std_msgs/Header (sensor_msgs/Image and friends):
4 bytes of CDR encapsulation (byte 1: 1 = little endian), then stamp.sec (int32) and
stamp.nanosec (uint32). The live replay handles whole camera frames and the node's five outputs
per frame this way; deserialising them in Python made the player, not the node, the bottleneck.
"""

from __future__ import annotations

_NS = 1_000_000_000


def _byte_order(raw: bytes) -> str:
    return "little" if raw[1] & 1 else "big"


def header_stamp_ns(raw: bytes) -> int:
    order = _byte_order(raw)
    sec = int.from_bytes(raw[4:8], order, signed=True)
    nanosec = int.from_bytes(raw[8:12], order)
    return sec * _NS + nanosec


def with_header_stamp(raw: bytes, stamp_ns: int) -> bytes:
    """A copy of `raw` whose header stamp is `stamp_ns`."""
    order = _byte_order(raw)
    sec, nanosec = divmod(stamp_ns, _NS)
    stamp = sec.to_bytes(4, order, signed=True) + nanosec.to_bytes(4, order)
    return raw[:4] + stamp + raw[12:]
