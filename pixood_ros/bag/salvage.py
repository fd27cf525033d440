"""Read what is left of an MCAP file whose tail is missing (a recorder killed mid-write, a copy cut
short), so an evaluation can still use every complete message before the damage.

rosbags needs the MCAP footer and summary to open a file; MCAP is append-only, so the data section
can also be walked record by record from the start (the format's own recovery path). This walker
yields messages until the first incomplete record and then reports where it stopped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rosbags.rosbag2.storage_mcap import decompress

MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x03, 0x04, 0x05, 0x06


class Truncated(Exception):
    """The file ended (or held garbage) inside a record."""


@dataclass
class SalvagedChannel:
    topic: str
    msgtype: str
    encoding: str


@dataclass
class McapSalvage:
    """Walks an MCAP data section; `channels` fills up as channel records are met."""

    path: Path
    channels: dict[int, SalvagedChannel] = field(default_factory=dict)
    schemas: dict[int, str] = field(default_factory=dict)
    stopped_at: int | None = None
    stop_reason: str | None = None

    def records(self) -> Iterator[tuple[int, bytes]]:
        with self.path.open("rb") as bio:
            if bio.read(8) != MAGIC:
                raise Truncated("not an MCAP file (bad magic)")
            yield from _walk(bio, self)

    def messages(self) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, log_time_ns, cdr bytes) for every complete message record."""
        for op, body in self.records():
            if op == OP_SCHEMA:
                (schema_id,) = struct.unpack_from("<H", body)
                self.schemas[schema_id] = _string(body, 2)[0]
            elif op == OP_CHANNEL:
                channel_id, schema_id = struct.unpack_from("<HH", body)
                topic, pos = _string(body, 4)
                encoding, _ = _string(body, pos)
                msgtype = self.schemas.get(schema_id, "")
                self.channels[channel_id] = SalvagedChannel(topic, msgtype, encoding)
            elif op == OP_MESSAGE:
                channel_id, _seq, log_time, _pub = struct.unpack_from("<HIQQ", body)
                channel = self.channels.get(channel_id)
                if channel is not None:
                    yield channel.topic, channel.msgtype, log_time, body[22:]


def _string(body: bytes, pos: int) -> tuple[str, int]:
    (size,) = struct.unpack_from("<I", body, pos)
    start = pos + 4
    return body[start : start + size].decode(), start + size


def _read_exact(bio: BinaryIO, size: int) -> bytes:
    data = bio.read(size)
    if len(data) != size:
        raise Truncated(f"file ends inside a record at byte {bio.tell()}")
    return data


def _walk(bio: BinaryIO, state: McapSalvage) -> Iterator[tuple[int, bytes]]:
    """Records of the data section; chunk records are opened and their records yielded."""
    try:
        while True:
            start = bio.tell()
            head = bio.read(9)
            if not head:
                state.stopped_at, state.stop_reason = start, "file ends without MCAP footer"
                return
            if len(head) < 9:
                raise Truncated(f"file ends inside a record header at byte {start}")
            op, size = struct.unpack("<BQ", head)
            if op == 0x02:  # footer: the file is complete
                return
            body = _read_exact(bio, size)
            if op == OP_CHUNK:
                yield from _chunk_records(body)
            else:
                yield op, body
    except Truncated as exc:
        state.stopped_at, state.stop_reason = bio.tell(), str(exc)
    except Exception as exc:  # corrupt record contents: stop at the damage, keep what we had
        state.stopped_at, state.stop_reason = bio.tell(), f"corrupt record ({exc})"


def _chunk_records(body: bytes) -> Iterator[tuple[int, bytes]]:
    _start, _end, uncompressed_size, crc = struct.unpack_from("<QQQI", body)
    compression, pos = _string(body, 28)
    (compressed_size,) = struct.unpack_from("<Q", body, pos)
    payload = body[pos + 8 : pos + 8 + compressed_size]
    if len(payload) != compressed_size:
        raise Truncated("chunk shorter than its header says")
    records = decompress(payload, compression, uncompressed_size, crc)
    pos, end = 0, len(records)
    while pos < end:
        op, size = struct.unpack_from("<BQ", records, pos)
        yield op, bytes(records[pos + 9 : pos + 9 + size])
        pos += 9 + size


def mcap_file_of(bag: Path) -> Path | None:
    """The single .mcap file of a bag directory (or the bag itself when it is a bare file)."""
    if bag.is_file():
        return bag if bag.suffix == ".mcap" else None
    files = sorted(bag.glob("*.mcap"))
    return files[0] if len(files) == 1 else None
