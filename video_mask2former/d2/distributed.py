"""Data-parallel training wherever detectron2's ``launch`` runs: GPUs (NCCL) or CPUs (GLOO).

detectron2's ``create_ddp_model`` always passes ``device_ids=[local_rank]`` to
``DistributedDataParallel``, which only accepts ``device_ids`` for a model on one GPU; for a CPU
model (``MODEL.DEVICE cpu``, several processes) it raises "DistributedDataParallel device_ids and
output_device arguments only work with single-device/multiple-device GPU modules or CPU modules".
:func:`create_ddp_model` passes ``device_ids`` only for a model on one CUDA device, and
:func:`device_aware_ddp` makes ``DefaultTrainer.__init__`` (which calls detectron2's function by
its module-level name) use it.
"""

import contextlib
from typing import Iterator

import detectron2.engine.defaults as d2_defaults
from detectron2.utils import comm
from torch import nn

__all__ = ["create_ddp_model", "device_aware_ddp"]

# detectron2's function, kept before any patching.
_d2_create_ddp_model = d2_defaults.create_ddp_model


def create_ddp_model(model: nn.Module, **kwargs) -> nn.Module:
    """detectron2's ``create_ddp_model`` (DDP when there are >1 processes), on any device.

    Args:
        model (nn.Module): the model, already on its device.
        **kwargs: passed to detectron2's ``create_ddp_model`` (``fp16_compression``) and to
            ``DistributedDataParallel``. Without ``device_ids``: ``[local rank]`` for a model on
            one CUDA device (as detectron2), None otherwise (CPU, or a model over several
            devices), as ``DistributedDataParallel`` requires.

    Returns:
        nn.Module: ``model`` itself with one process, else a ``DistributedDataParallel``.
    """
    if comm.get_world_size() > 1 and "device_ids" not in kwargs:
        devices = {p.device for p in model.parameters()}
        single_gpu = len(devices) == 1 and next(iter(devices)).type == "cuda"
        kwargs["device_ids"] = [comm.get_local_rank()] if single_gpu else None
    return _d2_create_ddp_model(model, **kwargs)


@contextlib.contextmanager
def device_aware_ddp() -> Iterator[None]:
    """Within the block, ``DefaultTrainer.__init__`` wraps the model with :func:`create_ddp_model`.

    Example::

        class Trainer(DefaultTrainer):
            def __init__(self, cfg):
                with device_aware_ddp():
                    super().__init__(cfg)
    """
    d2_defaults.create_ddp_model = create_ddp_model
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = _d2_create_ddp_model
