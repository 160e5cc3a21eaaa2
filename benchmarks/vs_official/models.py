"""The two models of the benchmark against the official code, with the same weights.

Ours is ``build_video_maskformer``; the official is its ``VideoMaskFormer`` built by detectron2's
``build_model`` from the official YouTube-VIS 2019 config, run from a patched copy of the official
source (see :mod:`benchmarks.official_source`). Ours is built with a fixed seed and its
``state_dict`` loaded into the official model (the keys are the same by design). Ours and the
official register classes of the same names in detectron2's registries, so a child process imports
one implementation only.
"""

import argparse
import logging
import os
import sys
import types
from collections import OrderedDict
from typing import Callable, Dict

from benchmarks.vs_official.inputs import NUM_CLASSES

# Official configs (relative to the official repository) of the benchmarked backbones.
OFFICIAL_CONFIGS = {
    "R50": "configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml",
    "swin_tiny": "configs/youtubevis_2019/swin/video_maskformer2_swin_tiny_bs16_8ep.yaml",
}
# Logger of the official retry_if_cuda_oom: it logs when it re-runs a step on the CPU after OOM.
OFFICIAL_OOM_LOGGER = "mask2former_video.utils.memory"


def build_ours(args: argparse.Namespace, backbone: str):
    from video_mask2former.modeling.build import build_video_maskformer

    return build_video_maskformer(backbone, num_classes=NUM_CLASSES, num_frames=args.train_frames)


class _CountingHandler(logging.Handler):
    """Counts the records of a logger."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record):
        self.count += 1


def _official_op_stub() -> types.ModuleType:
    """A stand-in for the compiled official op whose functions raise.

    The official ``MSDeformAttn.forward`` calls the op inside a bare ``try`` and falls back to its
    ``ms_deform_attn_core_pytorch`` on any error: what it does on the CPU with the real op too,
    whose CPU functions raise "Not implemented on the CPU". Only used on the CPU.
    """

    def not_compiled(*args, **kwargs):
        raise NotImplementedError("official MultiScaleDeformableAttention: CPU stub")

    stub = types.ModuleType("MultiScaleDeformableAttention")
    stub.ms_deform_attn_forward = not_compiled
    stub.ms_deform_attn_backward = not_compiled
    return stub


def import_official(args: argparse.Namespace) -> Dict[str, Callable[[], int]]:
    """Import the official code and instrument two fallbacks.

    The prepared official copy and the folder of its built op come first on the child's
    ``PYTHONPATH`` (``benchmark_vs_official.run_child``); on the CPU a stub stands in for the op.

    Returns:
        dict: name -> function giving how often, so far, the official deformable attention took
        its pure-PyTorch path, and how often ``retry_if_cuda_oom`` re-ran a step on the CPU.
    """
    if args.official_op == "stub":
        sys.modules["MultiScaleDeformableAttention"] = _official_op_stub()
    import mask2former.modeling.pixel_decoder.ops.modules.ms_deform_attn as official_msda

    pytorch_path = official_msda.ms_deform_attn_core_pytorch
    fallbacks = [0]

    def counting_pytorch_path(*inputs):
        fallbacks[0] += 1
        return pytorch_path(*inputs)

    # The module looks the function up at call time, so this counts the fallback calls.
    official_msda.ms_deform_attn_core_pytorch = counting_pytorch_path
    oom_retries = _CountingHandler()
    logging.getLogger(OFFICIAL_OOM_LOGGER).addHandler(oom_retries)
    logging.getLogger(OFFICIAL_OOM_LOGGER).setLevel(logging.INFO)
    return {
        "official_deform_attn_pytorch_calls": lambda: fallbacks[0],
        "official_oom_cpu_retries": lambda: oom_retries.count,
    }


def build_official(args: argparse.Namespace, backbone: str):
    """The official ``VideoMaskFormer`` from its config, set up as in its ``train_net_video.py``."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config
    from mask2former_video import add_maskformer2_video_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    cfg.merge_from_file(os.path.join(args.official_root, OFFICIAL_CONFIGS[backbone]))
    cfg.MODEL.DEVICE = args.device
    cfg.INPUT.SAMPLING_FRAME_NUM = args.train_frames
    return build_model(cfg)


def load_model(args: argparse.Namespace, backbone: str):
    """The model of ``args.impl`` with the shared weights (``args.weights``), on the device.

    Returns:
        tuple: the model and a dict of name -> callable giving diagnostics of the run.
    """
    import torch

    if args.impl == "official":
        diagnostics = import_official(args)
        model = build_official(args, backbone)
    else:
        import mask2former_ops

        diagnostics = {
            "ours_ops_compiled": mask2former_ops.is_compiled,
            "ours_cuda_kernels": mask2former_ops.cuda_kernels_built,
        }
        model = build_ours(args, backbone)
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    if args.impl == "official":
        # The official MaskFormerHead (_version 2) re-prefixes its keys when the state_dict's
        # metadata gives an older version, and ours records nn.Module's default version 1. The
        # keys are already the official ones: load them with the official model's own metadata.
        state = OrderedDict(state)
        state._metadata = model.state_dict()._metadata
    model.load_state_dict(state)
    return model.to(torch.device(args.device)), diagnostics
