"""The input topics of one camera, named the way image_transport users expect.

The node's input is the base topic `image` (or `N/image` per camera name N); remapping it is
enough whatever the transport:
- raw: the base topic itself;
- compressed: `<base>/compressed`, so `-r image:=/cam/image_raw` makes the node listen on
  `/cam/image_raw/compressed`; an explicit remap of `image/compressed` still wins;
- camera_info: the base topic's sibling `<dirname of base>/camera_info` (image_transport's
  CameraSubscriber rule), so `/cam/image_raw` pairs with `/cam/camera_info`; an explicit remap of
  `camera_info` wins.
Names are resolved once, at configure: remappings and the namespace do not change afterwards.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

# node.resolve_topic_name(name, only_expand=...): the fully qualified name of `name`.
Resolver = Callable[..., str]
COMPRESSED_SUFFIX = "/compressed"


@dataclass(frozen=True)
class CameraTopics:
    """Fully qualified input topics of one camera."""

    image: str  # the topic subscribed for frames (raw or compressed)
    camera_info: str


def camera_topics(resolve: Resolver, base: str, transport: str) -> CameraTopics:
    """The topics for relative base name `base` ('image' or 'N/image') and `transport`."""
    image_base = resolve(base)
    image = image_base
    if transport == "compressed":
        explicit = _explicit_remap(resolve, base + COMPRESSED_SUFFIX)
        if explicit is not None and image_base == resolve(base, only_expand=True):
            image_base = explicit.removesuffix(COMPRESSED_SUFFIX)  # only the compressed remapped
        image = explicit or image_base + COMPRESSED_SUFFIX
    info_name = posixpath.join(posixpath.dirname(base), "camera_info")
    camera_info = _explicit_remap(resolve, info_name) or _sibling(image_base, "camera_info")
    return CameraTopics(image=image, camera_info=camera_info)


def _explicit_remap(resolve: Resolver, name: str) -> str | None:
    """What a remapping rule made of `name`, or None when no rule applies to it."""
    remapped = resolve(name)
    return None if remapped == resolve(name, only_expand=True) else remapped


def _sibling(topic: str, name: str) -> str:
    return posixpath.join(posixpath.dirname(topic), name)
