"""The key layouts a checkpoint can be in, each converted to this project's (the official) one.

* :mod:`.official`: this project's and the official Mask2Former's keys (detectron2 ``.pkl``,
  training ``.pth``; Caffe2 / pycls files that detectron2 matches by name);
* :mod:`.hf`: transformers' Mask2Former (folders, ``.safetensors`` / ``.bin``, ``hf://``);
* :mod:`.imagenet`: torchvision ResNet and official Swin ImageNet backbones (converted offline).

Which one a file is in is decided once, by :func:`video_mask2former.checkpoint.formats.
read_checkpoint_file`.
"""
