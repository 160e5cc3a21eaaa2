"""The video transformer decoder: frame/video reshapes, batch independence, masked attention."""

import pytest
import torch

from video_mask2former.modeling.transformer_decoder import (
    CrossAttentionLayer,
    SelfAttentionLayer,
    VideoMultiScaleMaskedTransformerDecoder,
    frames_to_videos,
    videos_to_frames,
)

B, T, Q, K, C = 2, 2, 5, 3, 32


def _decoder(dec_layers=3):
    torch.manual_seed(0)
    return VideoMultiScaleMaskedTransformerDecoder(
        in_channels=C,
        num_classes=K,
        hidden_dim=C,
        num_queries=Q,
        nheads=4,
        dim_feedforward=64,
        dec_layers=dec_layers,
        mask_dim=C,
    ).eval()


def _inputs(batch=B, frames=T, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = [torch.randn(batch * frames, C, s, s + 1, generator=g) for s in (2, 4, 8)]
    mask_features = torch.randn(batch * frames, C, 16, 18, generator=g)
    return x, mask_features


def test_frames_videos_round_trip():
    x = torch.arange(24).view(6, 4)
    videos = frames_to_videos(x, 3)
    assert videos.shape == (2, 3, 4) and torch.equal(videos[1, 0], x[3])
    assert torch.equal(videos_to_frames(videos), x)
    with pytest.raises(ValueError, match="do not split"):
        frames_to_videos(x, 4)


def test_output_shapes_and_aux():
    decoder = _decoder()
    x, mask_features = _inputs()
    out = decoder(x, mask_features, num_frames=T, keep_aux=True)
    assert out["pred_logits"].shape == (B, Q, K + 1)
    assert out["pred_masks"].shape == (B, Q, T, 16, 18)
    assert len(out["aux_outputs"]) == 3
    no_aux = decoder(x, mask_features, num_frames=T)
    assert "aux_outputs" not in no_aux
    assert torch.allclose(no_aux["pred_masks"], out["pred_masks"])


def test_videos_are_independent_and_frame_count_is_explicit():
    decoder = _decoder()
    x, mask_features = _inputs(batch=2, frames=2)
    joint = decoder(x, mask_features, num_frames=2)
    for b in range(2):
        single = decoder([f[2 * b : 2 * b + 2] for f in x], mask_features[2 * b : 2 * b + 2], 2)
        assert torch.allclose(joint["pred_masks"][b], single["pred_masks"][0], atol=1e-5)
    # The same 4 frames as one 4-frame video give a different (joint) prediction.
    as_one = decoder(x, mask_features, num_frames=4)
    assert as_one["pred_masks"].shape == (1, Q, 4, 16, 18)


def test_mask_prediction_is_dot_product_with_frame_features():
    decoder = _decoder(dec_layers=0)
    x, mask_features = _inputs()
    out = decoder(x, mask_features, num_frames=T)
    query = decoder.decoder_norm(decoder.query_feat.weight)
    embed = decoder.mask_embed(query)  # (Q, C)
    expected = torch.einsum("qc,nchw->nqhw", embed, mask_features)  # (B*T, Q, h, w)
    expected = expected.view(B, T, Q, 16, 18).transpose(1, 2)
    assert torch.allclose(out["pred_masks"], expected, atol=1e-5)
    assert torch.allclose(out["pred_logits"][0], decoder.class_embed(query), atol=1e-6)


def test_attention_mask_covers_all_frames():
    decoder = _decoder()
    _, mask_features = _inputs()
    mask_features = mask_features.view(B, T, C, 16, 18)
    output = decoder.query_feat.weight[:, None].repeat(1, B, 1)
    _, masks, attn_mask = decoder.forward_prediction_heads(output, mask_features, (4, 5))
    assert attn_mask.shape == (B * 4, Q, T * 4 * 5) and attn_mask.dtype == torch.bool
    resized = torch.nn.functional.interpolate(masks.flatten(0, 1), size=(4, 5), mode="bilinear")
    expected = resized.view(B, Q, -1).sigmoid() < 0.5
    assert torch.equal(attn_mask.view(B, 4, Q, -1)[:, 2], expected)


def test_attention_layers_keys():
    assert set(SelfAttentionLayer(d_model=8, nhead=2).state_dict()) == {
        "self_attn.in_proj_weight",
        "self_attn.in_proj_bias",
        "self_attn.out_proj.weight",
        "self_attn.out_proj.bias",
        "norm.weight",
        "norm.bias",
    }
    assert "multihead_attn.in_proj_weight" in CrossAttentionLayer(d_model=8, nhead=2).state_dict()


@pytest.mark.parametrize("pre_norm", [False, True])
def test_cross_attention_respects_mask(pre_norm):
    layer = CrossAttentionLayer(d_model=8, nhead=2, normalize_before=pre_norm).eval()
    tgt, memory = torch.randn(3, 1, 8), torch.randn(6, 1, 8)
    mask = torch.zeros(2, 3, 6, dtype=torch.bool)
    mask[:, :, 3:] = True  # only the first 3 keys may be seen
    changed = memory.clone()
    changed[3:] += 10
    assert torch.allclose(layer(tgt, memory, mask), layer(tgt, changed, mask), atol=1e-6)
    assert not torch.allclose(layer(tgt, memory), layer(tgt, changed))


@pytest.mark.parametrize("size", [(2, 3), (5, 7), (16, 18)])
def test_attention_mask_from_resized_features_equals_resized_masks(size):
    """Between layers at inference the attention mask comes from mask features resized to the
    level's size: the same mask as resizing the full-size mask logits (bilinear resizing is linear
    and per channel), except where a logit is within float rounding of the threshold."""
    from video_mask2former.modeling.transformer_decoder import _resized_frames_matrix

    decoder = _decoder()
    g = torch.Generator().manual_seed(1)
    output = torch.randn(Q, B, C, generator=g)
    mask_features = torch.randn(B, T, C, 16, 18, generator=g)
    _, full_masks, expected = decoder.forward_prediction_heads(output, mask_features, size)
    got = decoder._attention_mask_only(output, _resized_frames_matrix(mask_features, size))
    assert got.shape == expected.shape == (B * decoder.num_heads, Q, T * size[0] * size[1])
    logits = torch.nn.functional.interpolate(
        full_masks.flatten(0, 1), size=size, mode="bilinear", align_corners=False
    ).view(B, 1, Q, -1)
    near_threshold = (logits.abs() < 1e-5).expand(-1, decoder.num_heads, -1, -1).flatten(0, 1)
    assert torch.equal(got[~near_threshold], expected[~near_threshold])
    assert (~near_threshold).float().mean() > 0.99  # the comparison is not vacuous


def test_inference_equals_the_last_layer_of_deep_supervision_on_nine_layers():
    """keep_aux=False (inference: attention masks at the levels' sizes) and keep_aux=True (every
    layer's full-size predictions) give the same final predictions."""
    decoder = _decoder(dec_layers=9)
    for seed in range(3):
        x, mask_features = _inputs(seed=seed)
        full = decoder(x, mask_features, num_frames=T, keep_aux=True)
        fast = decoder(x, mask_features, num_frames=T)
        assert torch.allclose(fast["pred_logits"], full["pred_logits"], atol=1e-5)
        assert torch.allclose(fast["pred_masks"], full["pred_masks"], atol=1e-4)
