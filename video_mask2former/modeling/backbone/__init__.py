"""Backbones returning ``{"res2": ..., "res5": ...}`` feature maps, with detectron2 key names."""
