"""MSDeformAttnPixelDecoder: output shapes, and its precision under autocast."""

import pytest
import torch

from tests.modeling.tiny_video_model import HIDDEN, TinyBackbone
from video_mask2former.modeling.pixel_decoder import MSDeformAttnPixelDecoder


def _decoder(fp32: bool) -> MSDeformAttnPixelDecoder:
    torch.manual_seed(0)
    return MSDeformAttnPixelDecoder(
        input_shape=TinyBackbone().output_shape(),
        transformer_nheads=4,
        transformer_dim_feedforward=64,
        transformer_enc_layers=1,
        conv_dim=HIDDEN,
        mask_dim=HIDDEN,
        fp32=fp32,
    ).eval()


def _features():
    torch.manual_seed(1)
    return TinyBackbone()(torch.randn(2, 3, 64, 96))


def test_output_shapes():
    mask_features, encoder_features, multi_scale = _decoder(False).forward_features(_features())
    assert mask_features.shape == (2, HIDDEN, 16, 24)  # stride 4
    assert encoder_features.shape == (2, HIDDEN, 2, 3)  # stride 32
    assert [tuple(x.shape[-2:]) for x in multi_scale] == [(2, 3), (4, 6), (8, 12)]


@pytest.mark.parametrize("fp32", [False, True])
def test_autocast_precision_is_a_choice(fp32):
    decoder, features = _decoder(fp32), _features()
    with torch.no_grad():
        reference = decoder.forward_features(features)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = decoder.forward_features(features)[0]
    # fp32=False: autocast runs the decoder (deformable attention included) in bfloat16.
    assert mixed.dtype == (torch.float32 if fp32 else torch.bfloat16)
    error = (mixed.float() - reference).abs().max() / reference.abs().max()
    assert error < (1e-6 if fp32 else 5e-2)
