"""One way to read a bag for evaluation, healthy or damaged.

A healthy bag is read with rosbags. An MCAP bag that rosbags cannot open because its tail is
missing is read with the salvage walker: every complete message before the damage is delivered
and then `BagDamaged` is raised, so the evaluator keeps what it computed and writes a partial
report. A failure while reading a healthy bag (a corrupt page or chunk) is raised as `BagDamaged`
as well.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from pixood_ros.bag import bagio
from pixood_ros.bag.bagio import BagMessage
from pixood_ros.bag.errors import BagDamaged, BagError
from pixood_ros.bag.salvage import McapSalvage, mcap_file_of
from pixood_ros.cli import one_line


class BagInput:
    """Topic listing and time-ordered message iteration over one bag."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader = None
        self.salvage: McapSalvage | None = None
        self.open_error: str | None = None
        try:
            self.reader = bagio.open_reader(path)
        except BagError as exc:
            mcap = mcap_file_of(path) if path.exists() else None
            if mcap is None or not bagio.looks_like_bag(mcap):  # salvage what is MCAP
                raise
            self.open_error = str(exc)
            self._open_salvage(mcap)

    def _open_salvage(self, mcap: Path) -> None:
        """Scan the readable part once for topics and counts, so topic choice works as usual."""
        self.salvage = McapSalvage(mcap)
        self.topics: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        for topic, msgtype, _, _ in self.salvage.messages():
            self.topics[topic] = msgtype
            self.counts[topic] = self.counts.get(topic, 0) + 1
        if not self.counts:
            raise BagError(
                f"{self.open_error}; nothing before the damage is readable "
                f"({self.salvage.stop_reason or 'no messages'})"
            )

    @property
    def salvaged(self) -> bool:
        return self.salvage is not None

    @property
    def storage(self) -> str:
        if self.salvage is not None:
            return "mcap"
        return bagio.storage_identifier(self.path)

    def topic_types(self) -> dict[str, str]:
        if self.salvage is not None:
            return dict(self.topics)
        return {c.topic: c.msgtype for c in self.reader.connections}

    def message_counts(self) -> dict[str, int]:
        if self.salvage is not None:
            return dict(self.counts)
        return bagio.message_counts(self.reader)

    def duration_ns(self) -> int:
        """Bag time span (0 when unknown, e.g. for a salvaged bag)."""
        if self.salvage is not None:
            return 0
        return int(self.reader.duration)

    def choose_image_topic(self, topic: str | None, label_topics: Collection[str] = ()) -> str:
        return bagio.choose_topic_from(self.topic_types(), topic, label_topics)

    def messages(self, topics: list[str]) -> Iterator[BagMessage]:
        if self.salvage is not None:
            yield from self._salvaged_messages(topics)
            return
        try:
            yield from bagio.iter_messages(self.reader, topics)
        except Exception as exc:
            raise BagDamaged(f"bag {self.path} is damaged: {one_line(exc)}") from exc

    def _salvaged_messages(self, topics: list[str]) -> Iterator[BagMessage]:
        wanted = set(topics)
        salvage = McapSalvage(self.salvage.path)
        for topic, msgtype, log_time, raw in salvage.messages():
            if topic not in wanted:
                continue
            try:
                msg = bagio.TYPESTORE.deserialize_cdr(raw, msgtype)
            except Exception as exc:
                raise BagDamaged(
                    f"bag {self.path} is damaged: cannot decode a {msgtype} message on {topic} "
                    f"({one_line(exc)})"
                ) from exc
            yield bagio.bag_message(topic, msgtype, log_time, raw, msg)
        if salvage.stop_reason is None:
            return
        raise BagDamaged(
            f"bag {self.path} is damaged ({self.open_error}); read up to byte "
            f"{salvage.stopped_at}: {salvage.stop_reason}"
        )

    @property
    def dataset(self) -> str | None:
        """The published layout the bag was made from (pixood-make-bag --dataset, or detected),
        from metadata.yaml's custom_data; None when it does not say or cannot be read."""
        return bagio.custom_data(self.path).get(bagio.DATASET_KEY)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
