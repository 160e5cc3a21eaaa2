"""Window linking and stream track management against values computed independently.

Written to kill the mutants that survived the rest of the suite (e.g. cosine similarity replaced
by a raw dot product, a count or a bound off by one). Expected values are computed here by brute
force or by hand, never copied from the code's output.
"""

import itertools

import numpy as np
import pytest
import torch

from video_mask2former.inference.windowed import (
    TrackAccumulator,
    WindowOutput,
    average_track_scores,
    match_embeddings,
)

Q, K = 4, 3  # queries, classes (+1 no-object)


def _best_permutation(similarity):
    """order[j]: the current query continuing track j, maximising the total similarity."""
    q = similarity.shape[0]
    return max(
        itertools.permutations(range(q)), key=lambda p: sum(similarity[j, p[j]] for j in range(q))
    )


def test_match_embeddings_maximises_cosine_not_dot_product():
    """README: windows are linked by Hungarian matching on *cosine* similarity, so the norm of an
    embedding must not change the matching."""
    rng = np.random.default_rng(0)
    differs = 0
    for _ in range(20):
        previous = rng.normal(size=(Q, 3)) * 10 ** rng.uniform(-2, 2, size=(Q, 1))
        current = rng.normal(size=(Q, 3)) * 10 ** rng.uniform(-2, 2, size=(Q, 1))
        unit_p = previous / np.linalg.norm(previous, axis=1, keepdims=True)
        unit_c = current / np.linalg.norm(current, axis=1, keepdims=True)
        expected = _best_permutation(unit_p @ unit_c.T)
        order = match_embeddings(torch.tensor(previous), torch.tensor(current))
        assert order.dtype == torch.int64
        assert tuple(order.tolist()) == expected
        differs += expected != _best_permutation(previous @ current.T)
    assert differs >= 3  # the inputs do tell cosine from dot product (guard of the test itself)


def test_average_track_scores_by_hand():
    prob_sum_active = torch.tensor([[0.6, 0.2], [0.0, 0.0], [0.9, 0.3]])
    prob_sum_all = torch.tensor([[0.8, 0.4], [0.5, 0.7], [1.2, 0.6]])
    active_windows = torch.tensor([2.0, 0.0, 3.0])
    # one count for all tracks: the never-active track 1 averages over the 4 windows
    out = average_track_scores(prob_sum_active, prob_sum_all, active_windows, 4)
    expected = torch.tensor([[0.3, 0.1], [0.125, 0.175], [0.3, 0.1]])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    # one count per track; a zero count is taken as 1 (a track with no window yet)
    out = average_track_scores(
        prob_sum_active, prob_sum_all, active_windows, torch.tensor([4.0, 2.0, 0.0])
    )
    expected = torch.tensor([[0.3, 0.1], [0.25, 0.35], [0.3, 0.1]])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    # an active count of zero never divides: the all-windows average is used
    zero = average_track_scores(
        torch.zeros(1, 2), torch.tensor([[0.4, 0.2]]), torch.tensor([0.0]), torch.tensor([0.0])
    )
    torch.testing.assert_close(zero, torch.tensor([[0.4, 0.2]]), rtol=0, atol=0)


_EMBEDS = torch.eye(Q, 6)  # orthonormal: the matching is unambiguous


def _window(present, logits, perm=None, frames=2):
    """Query i of the window is track perm[i]; ``present[t][f]``: track t has a mask in frame f;
    ``logits[t]``: (K+1,) class logits of track t."""
    perm = list(range(Q)) if perm is None else perm
    masks = torch.full((Q, frames, 8, 8), -10.0)
    out_logits = torch.zeros(Q, K + 1)
    for query, track in enumerate(perm):
        out_logits[query] = torch.as_tensor(logits[track])
        for f in range(frames):
            if present[track][f]:
                masks[query, f, 2 * track : 2 * track + 2, 0:3] = 10.0
    return WindowOutput(
        out_logits, masks, _EMBEDS[perm] * (1 + torch.arange(Q))[:, None], (8, 8), (8, 8)
    )


def _probs(logits):
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32), 0)[:-1]


def test_track_accumulator_scores_and_masks_follow_the_tracks():
    logits_a = [[3.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0, 0, 0, 4.0]]
    logits_b = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0], [0, 0, 0, 1.0]]
    present_a = [[True, False], [False, False], [True, True], [False, False]]
    present_b = [[False, True], [True, False], [False, False], [False, False]]
    acc = TrackAccumulator((8, 8))
    acc.add(_window(present_a, logits_a))
    order = acc.add(_window(present_b, logits_b, perm=[2, 0, 3, 1]))
    assert order.tolist() == [1, 3, 0, 2]  # query continuing each track
    assert acc.num_windows == 2 and acc.num_frames == 4
    expected = torch.stack(
        [
            (_probs(logits_a[0]) + _probs(logits_b[0])) / 2,  # active in both windows
            _probs(logits_b[1]),  # active in the second window only
            _probs(logits_a[2]),  # active in the first window only
            (_probs(logits_a[3]) + _probs(logits_b[3])) / 2,  # never active: all windows
        ]
    )
    torch.testing.assert_close(acc.track_scores(), expected, rtol=0, atol=1e-6)
    result = acc.result(topk=Q * K)
    assert result["pred_scores"] == sorted(result["pred_scores"], reverse=True)
    for score, label, track, masks in zip(
        result["pred_scores"], result["pred_labels"], result["pred_track_ids"], result["pred_masks"]
    ):
        assert score == pytest.approx(expected[track, label].item(), abs=1e-6)
        dense = masks.to_tensor()  # (4, 8, 8)
        presence = present_a[track] + present_b[track]
        assert dense.flatten(1).any(1).tolist() == presence
        for f, here in enumerate(presence):
            if here:
                assert dense[f, 2 * track : 2 * track + 2, 0:3].all() and dense[f].sum() == 6


def test_window_with_another_query_count_is_named_in_the_error():
    acc = TrackAccumulator((8, 8))
    acc.add(_window([[True, True]] * Q, [[1.0, 0.0, 0.0, 0.0]] * Q))
    small = WindowOutput(torch.zeros(Q - 1, K + 1), torch.zeros(Q - 1, 2, 8, 8),
                         torch.eye(Q - 1, 6), (8, 8), (8, 8))  # fmt: skip
    with pytest.raises(ValueError, match=f"window 1 has {Q - 1} queries, earlier windows had {Q}"):
        acc.add(small)
    assert acc.num_windows == 1


# In ``WindowLinker._encode_masks`` the pre-filter ``amax > MASK_LOGIT_THRESHOLD`` only skips maps
# that cannot have a foreground pixel; ``>=`` would also resize a map whose largest logit is exactly
# the threshold, whose resized logits are still <= it, so no pixel: an equivalent mutant.
