#!/usr/bin/env python
"""Accuracy of bfloat16 CPU inference against float32: the parity fixture's top-k, the quick AP.

Two measurements, each run in float32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``:

- ``parity``: R50 Video Mask2Former with the deterministic weights of the parity tests
  (``tests/parity_weights.py``) on the parity fixture's video (``--fixture``), through the public
  inference path (``model([{"image": frames, "height": H, "width": W}])``). The two top-k lists
  are compared as (query, class) pairs, the top-k's unit (:func:`compare_topk`); printed: each
  float32 instance with its bfloat16 rank and score, the score difference and the mask IoU, the
  pairs in one list only (with their score on the other side), and the raw outputs' largest
  differences (``pred_logits``, ``pred_masks``, the class probabilities, the share of mask
  logits whose sign flips). The float32 top-k is also checked against the official one stored
  in the fixture.
- ``ap`` (needs detectron2 and ``--weights``, e.g. the quick start's ``model_final.pth``):
  ``train_net_video.py --eval-only`` on the YouTube-VIS split ``--gt`` (first ``--max-videos``
  videos; default the synthetic val split) once with ``MODEL.INFERENCE_PRECISION fp32`` and once
  with ``bf16``, each in its own process; AP / AP50 / AP75 of each (this project's YouTube-VIS
  metric on the run's ``results.json``), the difference and the wall time of each run.

On a CPU without AVX512-BF16 / AMX the model would replace bfloat16 by float32 (see
:mod:`video_mask2former.precision`); here bfloat16 is always allowed (``allow_slow_low_precision``,
and ``VIDEO_MASK2FORMER_ALLOW_SLOW_LOW_PRECISION=1`` for the evaluation process): PyTorch then
emulates it, far slower but with the same arithmetic (bfloat16 operands, float32 accumulation).

Example:
    python -m benchmarks.bf16_accuracy --threads 1 --parts parity ap \\
        --config-file configs/quick_schedules/video_maskformer2_R18_synthetic_quick.yaml \\
        --weights output/quick_schedules/R18_synthetic/model_final.pth --json bf16_accuracy.json
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch

from benchmarks.common import ROOT, child_env, table, write_json
from video_mask2former.inference.postprocess import select_topk
from video_mask2former.precision import ALLOW_SLOW_ENV, cpu_info

DEFAULT_FIXTURE = os.path.join(ROOT, "tests", "fixtures", "parity", "r50_T3_96x128_seed2024.pt")
DEFAULT_CONFIG = os.path.join(
    ROOT, "configs", "quick_schedules", "video_maskformer2_R18_synthetic_quick.yaml"
)
# A bfloat16 instance matches a float32 one of the same label whose masks overlap at least this.
MIN_MATCH_IOU = 0.5
# Name under which the evaluated split is registered in the evaluation processes.
EVAL_DATASET = "bf16_accuracy_val"
# AP numbers reported (0-1 in the metric, printed in points).
AP_KEYS = ("AP", "AP50", "AP75")
PRECISIONS = ("fp32", "bf16")
# What a top-k result holds per instance.
_RESULT_KEYS = ("pred_scores", "pred_labels", "pred_masks")


# ---------------------------------------------------------------------------------------------
# Comparing two top-k lists
# ---------------------------------------------------------------------------------------------


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two boolean masks of one shape ((T, H, W)); 1.0 when both are
    empty (the same prediction)."""
    a, b = torch.as_tensor(a).bool(), torch.as_tensor(b).bool()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def with_queries(result: Dict, pred_logits: torch.Tensor) -> Dict:
    """``result`` (a top-k of one video) with ``pred_queries``: the query of each instance, from
    the raw class logits it was computed from (the same top-k selection), its instances sorted by
    decreasing score first (the official top-k is unordered).

    Args:
        result (dict): ``pred_scores``, ``pred_labels``, ``pred_masks`` (k each).
        pred_logits (Tensor): (Q, K+1) class logits of the same video.

    Raises:
        ValueError: the logits' top-k has other labels or scores (beyond 1e-6) than ``result``.
    """
    order = sorted(range(len(result["pred_scores"])), key=lambda i: -result["pred_scores"][i])
    result = {key: [result[key][i] for i in order] for key in _RESULT_KEYS}
    scores, labels, queries = select_topk(pred_logits.float(), len(order))
    close = all(abs(a - b) <= 1e-6 for a, b in zip(scores.tolist(), result["pred_scores"]))
    if labels.tolist() != list(result["pred_labels"]) or not close:
        raise ValueError("with_queries: the logits' top-k is not the result's (other logits?)")
    return dict(result, pred_queries=queries.tolist())


def compare_topk(
    reference: Dict,
    candidate: Dict,
    min_iou: float = MIN_MATCH_IOU,
    reference_scores: Optional[torch.Tensor] = None,
    candidate_scores: Optional[torch.Tensor] = None,
) -> Dict:
    """Compare the top-k of two results of one video (e.g. float32 and bfloat16).

    An instance is a (query, class) pair (the top-k's unit): a pair in both lists is matched,
    and its score difference and mask IoU are measured; a pair in one list only is reported with
    its score on the other side when that side's score matrix is given.

    Args:
        reference, candidate (dict): ``pred_scores`` (k floats), ``pred_labels`` (k ints),
            ``pred_masks`` (k boolean (T, H, W) tensors) and ``pred_queries`` (k ints, see
            :func:`with_queries`).
        min_iou (float): a matched pair whose masks overlap less counts as a mismatch.
        reference_scores, candidate_scores (Tensor, optional): (Q, K) class probabilities of
            every pair.

    Returns:
        dict: ``rows`` (one per reference instance: rank, query, label, score, the candidate's
        rank and score (the candidate's score of the pair when it is not in its top-k),
        ``score_diff`` (candidate - reference) and ``iou`` (None when unmatched)), ``matched``
        (pairs in both), ``all_matched`` (the same pairs, every IoU >= ``min_iou``),
        ``same_labels`` (as multisets), ``same_labels_in_order``, ``low_iou`` (reference ranks
        of matches below ``min_iou``), ``unmatched_reference`` / ``unmatched_candidate`` ((rank,
        query, label, score, the other side's score or None) lists), ``max_abs_score_diff`` and
        ``min_iou`` over the matches.

    Raises:
        ValueError: a result whose lists differ in length or repeat a pair.
    """
    pairs = [_pairs(result, name) for name, result in (("reference", reference),
                                                       ("candidate", candidate))]  # fmt: skip
    rows = []
    for rank, pair in enumerate(pairs[0]):
        score = float(reference["pred_scores"][rank])
        row = {
            "rank": rank,
            "query": pair[0],
            "label": pair[1],
            "score": score,
            "candidate_rank": None,
            "candidate_score": None,
            "score_diff": None,
            "iou": None,
        }
        j = pairs[1].get(pair)
        if j is not None:
            other = float(candidate["pred_scores"][j])
            iou = mask_iou(reference["pred_masks"][rank], candidate["pred_masks"][j])
            row.update(candidate_rank=j, candidate_score=other, score_diff=other - score, iou=iou)
        elif candidate_scores is not None:
            row.update(candidate_score=candidate_scores[pair].item())
        rows.append(row)  # fmt: skip
    matches = [row for row in rows if row["iou"] is not None]
    unmatched_candidate = [
        (j, *pair, float(candidate["pred_scores"][j]),
         None if reference_scores is None else reference_scores[pair].item())
        for pair, j in pairs[1].items() if pair not in pairs[0]
    ]  # fmt: skip
    low_iou = [row["rank"] for row in matches if row["iou"] < min_iou]
    labels = [list(result["pred_labels"]) for result in (reference, candidate)]
    return {
        "rows": rows,
        "matched": len(matches),
        "all_matched": len(matches) == len(rows) == len(pairs[1]) and not low_iou,
        "same_labels": sorted(labels[0]) == sorted(labels[1]),
        "same_labels_in_order": labels[0] == labels[1],
        "low_iou": low_iou,
        "unmatched_reference": [
            (r["rank"], r["query"], r["label"], r["score"], r["candidate_score"])
            for r in rows
            if r["iou"] is None
        ],
        "unmatched_candidate": unmatched_candidate,
        "max_abs_score_diff": max((abs(r["score_diff"]) for r in matches), default=None),
        "min_iou": min((r["iou"] for r in matches), default=None),
    }


def _pairs(result: Dict, name: str) -> Dict[tuple, int]:
    """(query, label) -> rank of a result's instances (checked: equal lengths, no repeats)."""
    lengths = {len(result[key]) for key in (*_RESULT_KEYS, "pred_queries")}
    if len(lengths) != 1:
        raise ValueError(
            f"compare_topk: the {name}'s scores, labels, masks and queries differ in count"
        )
    pairs = {
        (int(q), int(c)): i
        for i, (q, c) in enumerate(zip(result["pred_queries"], result["pred_labels"]))
    }
    if len(pairs) != len(result["pred_labels"]):
        raise ValueError(f"compare_topk: the {name} repeats a (query, label) pair")
    return pairs


def raw_output_differences(reference: Dict, candidate: Dict) -> Dict[str, float]:
    """The largest differences of two sets of raw outputs of one video.

    Args:
        reference, candidate (dict): ``pred_logits`` (B, Q, K+1) and ``pred_masks``
            (B, Q, T, h, w), any floating dtype.

    Returns:
        dict: max abs diff of ``pred_logits``, of the class probabilities (softmax) and of
        ``pred_masks``, the largest |mask logit| of the reference (for scale) and the share of
        mask logits whose sign differs (pixels that change side of the mask threshold).
    """
    logits = [x["pred_logits"].float() for x in (reference, candidate)]
    masks = [x["pred_masks"].float() for x in (reference, candidate)]
    probabilities = [x.softmax(-1) for x in logits]
    return {
        "pred_logits_max_abs_diff": (logits[1] - logits[0]).abs().max().item(),
        "probability_max_abs_diff": (probabilities[1] - probabilities[0]).abs().max().item(),
        "pred_masks_max_abs_diff": (masks[1] - masks[0]).abs().max().item(),
        "pred_masks_max_abs": masks[0].abs().max().item(),
        "mask_sign_flip_share": ((masks[0] > 0) != (masks[1] > 0)).float().mean().item(),
    }


# ---------------------------------------------------------------------------------------------
# Part (a): one model, one video, float32 and bfloat16
# ---------------------------------------------------------------------------------------------


def class_scores(pred_logits: torch.Tensor) -> torch.Tensor:
    """(Q, K) class probabilities of every (query, class) pair from (Q, K+1) logits."""
    return pred_logits.float().softmax(-1)[:, :-1]


def run_recorded(model, video: Dict, precision: str):
    """The public inference of ``video`` in ``precision`` ("fp32" or "bf16", CPU autocast).

    Returns:
        tuple: the result (with ``pred_queries``, :func:`with_queries`), the raw outputs of the
        network recorded on the way (``pred_logits`` (1, Q, K+1), ``pred_masks``
        (1, Q, T, h, w), float32; the model's ``predict`` wrapped for the call) and the call's
        wall time in seconds.
    """
    recorded = {}
    predict = model.predict

    def recording_predict(*args, **kwargs):
        outputs = predict(*args, **kwargs)
        recorded.update(
            {k: outputs[k].detach().float().clone() for k in ("pred_logits", "pred_masks")}
        )
        return outputs

    model.predict = recording_predict  # an instance attribute: shadows the method for this call
    try:
        low_precision = precision == "bf16"
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision):
            start = time.perf_counter()
            result = model([video])
            seconds = time.perf_counter() - start
    finally:
        del model.predict
    return with_queries(result, recorded["pred_logits"][0]), recorded, seconds


def compare_precisions(model, video: Dict, min_iou: float = MIN_MATCH_IOU) -> Dict:
    """Float32 against bfloat16 inference of ``video`` by ``model`` (in eval mode, on the CPU;
    bfloat16 is allowed even where this CPU emulates it).

    Returns:
        dict: ``results`` (the two inference results), ``seconds`` (wall time of each call),
        ``topk`` (:func:`compare_topk` of float32 against bfloat16) and ``raw``
        (:func:`raw_output_differences`).
    """
    allow = model.allow_slow_low_precision
    model.allow_slow_low_precision = True
    try:
        runs = {precision: run_recorded(model, video, precision) for precision in PRECISIONS}
    finally:
        model.allow_slow_low_precision = allow
    results = {precision: run[0] for precision, run in runs.items()}
    scores = [class_scores(runs[precision][1]["pred_logits"][0]) for precision in PRECISIONS]
    return {
        "results": results,
        "seconds": {precision: run[2] for precision, run in runs.items()},
        "topk": compare_topk(results["fp32"], results["bf16"], min_iou, *scores),
        "raw": raw_output_differences(runs["fp32"][1], runs["bf16"][1]),
    }


def parity_model_and_video(fixture_path: str):
    """R50 with the parity tests' deterministic weights, the fixture's video as an inference input
    and the fixture's official top-k (a result dict)."""
    from tests.parity_weights import deterministic_state_dict
    from video_mask2former.modeling.build import build_video_maskformer

    fixture = torch.load(fixture_path, weights_only=True)
    model = build_video_maskformer("R50")
    model.load_state_dict(deterministic_state_dict(model))
    height, width = fixture["output_size"]
    video = {"image": [f.float() for f in fixture["video"]], "height": height, "width": width}
    official = {
        "pred_scores": fixture["scores"].tolist(),
        "pred_labels": fixture["labels"].tolist(),
        "pred_masks": [m.bool() for m in fixture["masks"]],
    }
    return model.eval(), video, with_queries(official, fixture["pred_logits"])


def measure_parity(fixture_path: str, min_iou: float) -> Dict:
    """Part (a) on the parity fixture (see the module docstring)."""
    model, video, official = parity_model_and_video(fixture_path)
    comparison = compare_precisions(model, video, min_iou)
    comparison["fp32_vs_official"] = compare_topk(official, comparison["results"]["fp32"], min_iou)
    del comparison["results"]  # masks: not for the JSON
    return comparison


def print_parity(parity: Dict) -> None:
    topk, official = parity["topk"], parity["fp32_vs_official"]
    print(f"\n## Parity fixture: float32 vs bfloat16 top-{len(topk['rows'])}\n")
    columns = ["rank", "query", "label", "score", "candidate_rank", "candidate_score",
               "score_diff", "iou"]  # fmt: skip
    headers = ["fp32 rank", "query", "label", "fp32 score", "bf16 rank", "bf16 score", "diff",
               "mask IoU"]  # fmt: skip
    rows = [[row[c] for c in columns] for row in topk["rows"]]
    print(table(rows, headers=headers, floatfmt=("", "", "", ".5f", "", ".5f", "+.5f", ".4f")))
    print(
        f"\n(query, label) pairs in both top-{len(topk['rows'])}: {topk['matched']}; the same "
        f"labels: {topk['same_labels']} (in the same order: {topk['same_labels_in_order']}); "
        f"max |score diff| {_fmt(topk['max_abs_score_diff'], '.2e')}; min mask IoU "
        f"{_fmt(topk['min_iou'], '.4f')}"
    )
    for side, other, unmatched in (("fp32", "bf16", topk["unmatched_reference"]),
                                   ("bf16", "fp32", topk["unmatched_candidate"])):  # fmt: skip
        for rank, query, label, score, other_score in unmatched:
            print(
                f"only in the {side} top-k: rank {rank}, query {query}, label {label}, score "
                f"{score:.5f} ({other} score {_fmt(other_score, '.5f')})"
            )
    print("raw outputs: " + "; ".join(f"{key} {value:.3g}" for key, value in parity["raw"].items()))
    print(
        f"float32 vs the official top-k: {official['matched']}/{len(official['rows'])} pairs in "
        f"both, max |score diff| {_fmt(official['max_abs_score_diff'], '.2e')}, min mask IoU "
        f"{_fmt(official['min_iou'], '.4f')}"
    )
    seconds = parity["seconds"]
    print(f"wall time: fp32 {seconds['fp32']:.2f} s, bf16 {seconds['bf16']:.2f} s")


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


# ---------------------------------------------------------------------------------------------
# Part (b): AP of --eval-only in float32 and bfloat16
# ---------------------------------------------------------------------------------------------


def write_subset(gt_path: str, max_videos: int, path: str) -> int:
    """Write the first ``max_videos`` videos of the YouTube-VIS file ``gt_path`` (all when 0) with
    their annotations and every category to ``path``; returns the number of videos."""
    with open(gt_path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not data.get("videos") or "annotations" not in data:
        raise ValueError(f"{gt_path}: expected a YouTube-VIS file with videos and annotations")
    videos = data["videos"][:max_videos] if max_videos > 0 else data["videos"]
    kept = {video["id"] for video in videos}
    subset = dict(
        data, videos=videos, annotations=[a for a in data["annotations"] if a["video_id"] in kept]
    )
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(subset, f)
    os.replace(temporary, path)
    return len(videos)


def eval_command(args, precision: str, gt_path: str, output_dir: str) -> List[str]:
    """``train_net_video.py --eval-only`` of ``--weights`` on ``gt_path`` in ``precision``."""
    return [
        sys.executable, os.path.join(ROOT, "train_net_video.py"),
        "--config-file", args.config_file, "--eval-only",
        "--dataset", EVAL_DATASET, gt_path, args.image_root,
        "MODEL.WEIGHTS", args.weights, "MODEL.INFERENCE_PRECISION", precision,
        "DATASETS.TEST", f"('{EVAL_DATASET}',)", "OUTPUT_DIR", output_dir,
    ]  # fmt: skip


def run_eval(args, precision: str, gt_path: str) -> Dict:
    """One evaluation process (its log in ``<work dir>/<precision>/``): AP numbers and seconds."""
    from video_mask2former.evaluation import evaluate_ytvis

    output_dir = os.path.join(args.work_dir, precision)
    env = child_env()
    if args.threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    if precision == "bf16":
        env[ALLOW_SLOW_ENV] = "1"
    start = time.perf_counter()
    done = subprocess.run(
        eval_command(args, precision, gt_path, output_dir),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=args.timeout,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"--eval-only in {precision} failed (exit {done.returncode}; log in {output_dir}): "
            f"{done.stderr.strip()[-800:]}"
        )
    results = os.path.join(output_dir, "inference", EVAL_DATASET, "results.json")
    stats = evaluate_ytvis(gt_path, results)
    return {"precision": precision, "seconds": seconds, "results": results,
            **{key: 100 * stats[key] for key in AP_KEYS}}  # fmt: skip


def compare_results_files(reference_path: str, candidate_path: str) -> Dict:
    """Per-video agreement of two YouTube-VIS ``results.json`` of one split: each video's entries
    ranked by score, compared rank by rank.

    Returns:
        dict: ``videos``; ``same_labels_in_order`` (videos whose ranked category lists are equal);
        ``same_labels`` (equal as multisets); ``max_abs_score_diff`` over the ranks where both
        have the same category.
    """
    ranked = []
    for path in (reference_path, candidate_path):
        with open(path) as f:
            entries = json.load(f)
        videos = {}
        for entry in entries:
            videos.setdefault(entry["video_id"], []).append((entry["score"], entry["category_id"]))
        ranked.append({video: sorted(items, reverse=True) for video, items in videos.items()})
    in_order, same, differences = 0, 0, []
    for video in set(ranked[0]) | set(ranked[1]):
        a, b = ranked[0].get(video, []), ranked[1].get(video, [])
        in_order += [c for _, c in a] == [c for _, c in b]
        same += sorted(c for _, c in a) == sorted(c for _, c in b)
        differences += [abs(x - y) for (x, c), (y, d) in zip(a, b) if c == d]
    return {
        "videos": len(set(ranked[0]) | set(ranked[1])),
        "same_labels_in_order": in_order,
        "same_labels": same,
        "max_abs_score_diff": max(differences, default=None),
    }


def measure_ap(args) -> Dict:
    """Part (b): both evaluations on the first ``--max-videos`` videos of ``--gt``."""
    os.makedirs(args.work_dir, exist_ok=True)
    gt_path = os.path.join(args.work_dir, "gt.json")
    num_videos = write_subset(args.gt, args.max_videos, gt_path)
    runs = [run_eval(args, precision, gt_path) for precision in PRECISIONS]
    difference = {key: runs[1][key] - runs[0][key] for key in AP_KEYS}
    agreement = compare_results_files(runs[0]["results"], runs[1]["results"])
    return {"videos": num_videos, "gt": args.gt, "runs": runs, "bf16_minus_fp32": difference,
            "agreement": agreement}  # fmt: skip


def print_ap(ap: Dict) -> None:
    print(f"\n## AP of --eval-only on {ap['videos']} videos of {ap['gt']}\n")
    rows = [[run["precision"], *(run[k] for k in AP_KEYS), run["seconds"]] for run in ap["runs"]]
    rows.append(["bf16 - fp32", *(ap["bf16_minus_fp32"][k] for k in AP_KEYS), None])
    print(table(rows, headers=["precision", *AP_KEYS, "wall s"], floatfmt=".2f"))
    agreement = ap["agreement"]
    print(
        f"\nper video, entries ranked by score: the same categories in the same order in "
        f"{agreement['same_labels_in_order']}/{agreement['videos']} videos (as sets: "
        f"{agreement['same_labels']}); max |score diff| at a rank of the same category "
        f"{_fmt(agreement['max_abs_score_diff'], '.2e')}"
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    datasets = os.environ.get("DETECTRON2_DATASETS", "datasets")
    gt = os.path.join(datasets, "ytvis_synthetic", "valid.json")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=str, nargs="+", default=["parity", "ap"],
                        choices=["parity", "ap"])  # fmt: skip
    parser.add_argument("--fixture", type=str, default=DEFAULT_FIXTURE)
    parser.add_argument("--min-iou", type=float, default=MIN_MATCH_IOU,
                        help="least mask IoU of a matched instance")  # fmt: skip
    parser.add_argument("--config-file", type=str, default=DEFAULT_CONFIG)
    parser.add_argument("--weights", type=str, default="", help="the model to evaluate (ap)")
    parser.add_argument("--gt", type=str, default=gt, help="YouTube-VIS annotation file (ap)")
    parser.add_argument("--image-root", type=str, default=None,
                        help="its frames (default: <gt folder>/valid/JPEGImages)")  # fmt: skip
    parser.add_argument("--max-videos", type=int, default=0, help="first N videos (0: all)")
    parser.add_argument("--work-dir", type=str, default="output/bf16_accuracy",
                        help="the evaluations' outputs and logs")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=4 * 3600.0,
                        help="seconds per evaluation process")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.image_root is None:
        args.image_root = os.path.join(os.path.dirname(args.gt), "valid", "JPEGImages")
    if "ap" in args.parts:
        if not args.weights:
            parser.error("--parts ap needs --weights (e.g. the quick start's model_final.pth)")
        for what, path in (("--weights", args.weights), ("--gt", args.gt)):
            if not os.path.isfile(path):
                parser.error(f"{what} {path}: no such file")
        if not os.path.isdir(args.image_root):
            parser.error(f"--image-root {args.image_root}: no such folder")
        args.weights, args.gt = os.path.abspath(args.weights), os.path.abspath(args.gt)
        args.image_root = os.path.abspath(args.image_root)
        args.work_dir = os.path.abspath(args.work_dir)
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report = {"cpu": cpu_info().describe(), "threads": torch.get_num_threads(),
              "torch": torch.__version__}  # fmt: skip
    print(f"CPU: {report['cpu']}; torch {report['torch']}, {report['threads']} threads")
    if "parity" in args.parts:
        report["parity"] = dict(measure_parity(args.fixture, args.min_iou), fixture=args.fixture,
                                min_iou_threshold=args.min_iou)  # fmt: skip
        print_parity(report["parity"])
    if "ap" in args.parts:
        report["ap"] = measure_ap(args)
        print_ap(report["ap"])
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
