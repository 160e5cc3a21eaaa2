"""The Video Mask2Former network in pure PyTorch (no detectron2).

Start from :func:`video_mask2former.modeling.build.build_video_maskformer`, which builds the
official YouTube-VIS configurations; the parts live one per module (backbone/, pixel_decoder,
transformer_decoder, head, criterion, matcher, video_maskformer, inference). Long videos:
windowed_inference (offline, bounded memory) and streaming (online, per-frame results with stable
track ids: ``model.stream(window_size=W)``).
"""
