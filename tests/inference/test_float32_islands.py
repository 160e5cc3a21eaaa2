"""Post-processing stays float32 under the caller's autocast (the demo and --eval-only run the
whole inference, post-processing included, inside ``torch.autocast``)."""

import torch

from video_mask2former.inference.segmentation import video_semantic_inference
from video_mask2former.inference.windowed import match_embeddings


def test_window_linking_under_bf16_autocast_matches_float32():
    generator = torch.Generator().manual_seed(0)
    previous = torch.randn(6, 16, generator=generator)
    current = previous[torch.randperm(6, generator=generator)] + 0.01 * torch.randn(6, 16)
    expected = match_embeddings(previous, current)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 embeddings, as a bf16 network's
        got = match_embeddings(previous.bfloat16(), current.bfloat16())
    assert torch.equal(got, expected)


def test_semantic_scores_under_bf16_autocast_are_float32(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    logits, masks = torch.randn(5, 4, generator=generator), torch.randn(
        5, 2, 8, 8, generator=generator
    )
    seen = []
    einsum = torch.einsum

    def recording(*args):
        out = einsum(*args)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch, "einsum", recording)
    expected = video_semantic_inference(logits, masks, (32, 32), (32, 32), (32, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = video_semantic_inference(logits, masks, (32, 32), (32, 32), (32, 32))
    assert seen == [torch.float32, torch.float32]
    assert torch.equal(got["sem_seg"], expected["sem_seg"])
