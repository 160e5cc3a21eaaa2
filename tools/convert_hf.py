#!/usr/bin/env python
"""Convert Video Mask2Former weights between this project's (official) layout and transformers'.

Usage::

    # official .pkl / .pth -> a transformers folder (config.json + model.safetensors)
    python tools/convert_hf.py --to hf model_final.pkl out_folder --backbone swin_tiny \\
        --dataset ytvis_2019
    # a transformers folder, weights file or hf://<repo_id>[@revision] -> official .pth / .pkl
    python tools/convert_hf.py --to official hf://<owner>/<name> model.pth --backbone swin_tiny

The key mapping and what each layout lacks are described in
:mod:`video_mask2former.checkpoint.layouts.hf`. The output ``.pkl`` is a detectron2 model-zoo
pickle (``{"model": arrays, "__author__": ...}``, exact key names); any other output name gets
``torch.save({"model": state_dict})``.
"""

import argparse
import sys
from typing import List, Optional

from video_mask2former.checkpoint import CheckpointFileError, read_checkpoint
from video_mask2former.checkpoint.layouts.hf import load_hf_state_dict, save_hf_checkpoint
from video_mask2former.checkpoint.layouts.official import save_official_checkpoint
from video_mask2former.data.builtin_meta import metadata_for
from video_mask2former.file_io import check_writable
from video_mask2former.modeling.build import BACKBONES

# "__author__" of the written detectron2 pickles (detectron2 logs it when loading).
PICKLE_AUTHOR = "transformers Mask2Former, converted by tools/convert_hf.py"
# What each --to writes (added to an error about the output's kind).
WRITES = {
    "hf": "--to hf writes a folder (config.json + model.safetensors)",
    "official": "--to official writes one .pth or .pkl file",
}


def check_output(path: str, to: str, overwrite: bool) -> Optional[str]:
    """Why ``path`` cannot take the output of ``--to to`` (None: it can), checked before any
    input is read: a folder for ``hf`` (created later with its parents), a file in an existing
    folder for ``official``; never over existing output without ``--overwrite``; a writable disk
    (:func:`video_mask2former.file_io.check_writable`)."""
    try:
        check_writable(path, folder=to == "hf", overwrite=overwrite)
    except FileExistsError as error:
        return f"{error}; pass --overwrite to {'write into' if to == 'hf' else 'replace'} it"
    except (IsADirectoryError, NotADirectoryError) as error:
        return f"{error}; {WRITES[to]}"
    except OSError as error:
        return str(error)
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "input", type=str, help="official .pkl/.pth, or transformers folder/file/hf://"
    )
    parser.add_argument("output", type=str, help="transformers folder, or official .pth/.pkl")
    parser.add_argument("--to", type=str, required=True, choices=("hf", "official"))
    parser.add_argument(
        "--backbone",
        type=str,
        default=None,
        choices=BACKBONES,
        help="check that the weights have this backbone (default: no check)",
    )
    parser.add_argument(
        "--dataset",
        type=str,
        default=None,
        help="with --to hf: class names of config.json from this dataset (e.g. ytvis_2019)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output file (--to official) or write into a non-empty folder",
    )
    args = parser.parse_args(argv)
    if args.dataset and args.to != "hf":
        parser.error("--dataset only applies to --to hf")
    problem = check_output(args.output, args.to, args.overwrite)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        if args.to == "hf":
            class_names = metadata_for(args.dataset)["thing_classes"] if args.dataset else None
            weights = read_checkpoint(args.input)
            save_hf_checkpoint(
                args.output, weights, args.backbone, class_names=class_names, source=args.input
            )
            layout = "transformers' Mask2Former layout (config.json + model.safetensors)"
        else:
            weights = load_hf_state_dict(args.input, target=args.backbone)
            save_official_checkpoint(weights, args.output, author=PICKLE_AUTHOR)
            layout = "the official layout"
    except (CheckpointFileError, OSError, KeyError) as e:  # HFCheckpointError included
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {args.output}: {len(weights)} official weights in {layout}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
