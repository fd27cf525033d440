"""Network parts of PixOOD: frozen DINOv2 backbone, MLP decoder, in-graph preprocessing."""

from .backbone import BackboneConfig, DinoV2Backbone, build_backbone, load_backbone_weights
from .decoder import MLPDecoder
from .preprocess import network_input_size, preprocess_image

__all__ = [
    "BackboneConfig",
    "DinoV2Backbone",
    "MLPDecoder",
    "build_backbone",
    "load_backbone_weights",
    "network_input_size",
    "preprocess_image",
]
