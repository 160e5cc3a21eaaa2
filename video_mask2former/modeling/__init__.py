"""The Video Mask2Former network in pure PyTorch (no detectron2).

Start from :func:`video_mask2former.modeling.build.build_video_maskformer`, which builds the
official YouTube-VIS configurations; the parts live one per module (backbone/, pixel_decoder,
transformer_decoder, head, criterion, matcher, video_maskformer). Inference (whole video,
windowed, streaming) and its post-processing live in :mod:`video_mask2former.inference`; a model
ready for inference (weights loaded, eval mode) comes from
:func:`video_mask2former.build.build_inference_model`.
"""
