"""Config keys of video Mask2Former for detectron2's ``CfgNode``.

Both functions only set keys on the node passed in, so this module imports without detectron2:
new sub-nodes are created with the class of that node (yacs refuses to merge a YAML mapping into
a sub-node of another ``CfgNode`` class than the one it was loaded as).
After ``add_maskformer2_config(cfg)`` and ``add_maskformer2_video_config(cfg)`` a node from
``detectron2.config.get_cfg()`` accepts every configuration under ``configs/``.

The key names and defaults follow the official implementation so that its YAML files merge
unchanged; keys that the official YAMLs set but this project does not read are kept (and marked
"accepted, unused") so that those files still merge.
"""

__all__ = ["add_maskformer2_config", "add_maskformer2_video_config"]


def _new_node(cfg):
    """An empty sub-node of the same ``CfgNode`` class as ``cfg``."""
    return type(cfg)()


def _add_input_config(cfg):
    # Name of the dataset mapper of the image model (accepted, unused: videos use the YTVIS mapper).
    cfg.INPUT.DATASET_MAPPER_NAME = "mask_former_semantic"
    # SSD-style colour augmentation of the image model (accepted, unused: see INPUT.AUGMENTATIONS).
    cfg.INPUT.COLOR_AUG_SSD = False
    # Random crops are retried until no category covers more than this fraction of the crop
    # (semantic segmentation only; accepted, unused). Provided by DeepLab's config officially.
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0
    # Pad images in the dataset mapper to a multiple of this (-1: no padding in the mapper).
    cfg.INPUT.SIZE_DIVISIBILITY = -1
    # Large-scale jitter of the COCO image configs: output size and scale range (accepted, unused).
    cfg.INPUT.IMAGE_SIZE = 1024
    cfg.INPUT.MIN_SCALE = 0.1
    cfg.INPUT.MAX_SCALE = 2.0


def _add_solver_config(cfg):
    # Weight decay of nn.Embedding parameters (query features / positions, level embeddings).
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    # Optimizer: "ADAMW" or "SGD".
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    # Learning-rate multiplier of the backbone parameters.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    # Periodic checkpoints (model_<iteration>.pth, every SOLVER.CHECKPOINT_PERIOD iterations) kept
    # in OUTPUT_DIR: the older ones are deleted as new ones are written (0 keeps them all).
    # model_final.pth is never deleted. Not an official key (the official code keeps them all).
    cfg.SOLVER.CHECKPOINT_MAX_TO_KEEP = 3


def _add_resnet_config(cfg):
    # ResNet stem type, "basic" or "deeplab" (the official YAMLs set "basic"; only "basic" is
    # supported, as by detectron2's build_resnet_backbone). Provided by DeepLab's config officially.
    cfg.MODEL.RESNETS.STEM_TYPE = "basic"
    # Dilation multi-grid of res5 (accepted, unused: the YAMLs set [1, 1, 1], i.e. none).
    cfg.MODEL.RESNETS.RES5_MULTI_GRID = [1, 1, 1]


def _add_mask_former_config(cfg):
    cfg.MODEL.MASK_FORMER = _new_node(cfg)
    # Losses on the output of every decoder layer (deep supervision).
    cfg.MODEL.MASK_FORMER.DEEP_SUPERVISION = True
    # Weight of the "no object" class in the classification loss.
    cfg.MODEL.MASK_FORMER.NO_OBJECT_WEIGHT = 0.1
    # Loss weights (also the costs of the Hungarian matcher).
    cfg.MODEL.MASK_FORMER.CLASS_WEIGHT = 1.0
    cfg.MODEL.MASK_FORMER.DICE_WEIGHT = 1.0
    cfg.MODEL.MASK_FORMER.MASK_WEIGHT = 20.0

    # Transformer decoder: attention heads, dropout, FFN width.
    cfg.MODEL.MASK_FORMER.NHEADS = 8
    cfg.MODEL.MASK_FORMER.DROPOUT = 0.1
    cfg.MODEL.MASK_FORMER.DIM_FEEDFORWARD = 2048
    # Encoder layers of the transformer predictor (must be 0 for the masked-attention decoder).
    cfg.MODEL.MASK_FORMER.ENC_LAYERS = 0
    # Decoder layers + 1: the extra one is the prediction from the learnable queries alone.
    cfg.MODEL.MASK_FORMER.DEC_LAYERS = 6
    # Pre-norm transformer layers (False: post-norm as in the official models).
    cfg.MODEL.MASK_FORMER.PRE_NORM = False
    # Query / transformer width and number of object queries.
    cfg.MODEL.MASK_FORMER.HIDDEN_DIM = 256
    cfg.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES = 100
    # Which feature the predictor reads ("multi_scale_pixel_decoder" for Mask2Former).
    cfg.MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE = "res5"
    # Always add a 1x1 input projection even when channel counts already match.
    cfg.MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ = False
    # Pad the input to a multiple of this; -1 uses the backbone's size_divisibility.
    cfg.MODEL.MASK_FORMER.SIZE_DIVISIBILITY = 32
    # Registry name of the transformer decoder.
    cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME = "MultiScaleMaskedTransformerDecoder"

    # Point-sampled mask loss (PointRend-style): points per mask, oversampling factor k and
    # fraction beta of importance-sampled points.
    cfg.MODEL.MASK_FORMER.TRAIN_NUM_POINTS = 112 * 112
    cfg.MODEL.MASK_FORMER.OVERSAMPLE_RATIO = 3.0
    cfg.MODEL.MASK_FORMER.IMPORTANCE_SAMPLE_RATIO = 0.75

    cfg.MODEL.MASK_FORMER.TEST = _new_node(cfg)
    # The video task the model returns at inference; exactly one must be True (else a
    # ConfigError naming the three keys: video_mask2former.d2.registration.video_task).
    # INSTANCE_ON: video instances (the paper); PANOPTIC_ON: per-frame panoptic id maps, thing
    # ids stable through the video; SEMANTIC_ON: per-frame class maps.
    # The image model's defaults are SEMANTIC_ON=True, INSTANCE_ON=False; here they are
    # INSTANCE_ON=True, SEMANTIC_ON=False, so that a config written for the official video code
    # (instances only; it need not set these keys) still selects instances. Every shipped
    # instance config sets INSTANCE_ON=True, SEMANTIC_ON=False explicitly anyway.
    cfg.MODEL.MASK_FORMER.TEST.SEMANTIC_ON = False
    cfg.MODEL.MASK_FORMER.TEST.INSTANCE_ON = True
    cfg.MODEL.MASK_FORMER.TEST.PANOPTIC_ON = False
    # Panoptic inference (the image model's keys and defaults): a query is kept when its best
    # class probability exceeds OBJECT_MASK_THRESHOLD; a kept query whose won area is below
    # OVERLAP_THRESHOLD of its own mask is dropped. Unused by instance and semantic inference.
    cfg.MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD = 0.0
    cfg.MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD = 0.0
    # Resize predictions to the input size before semantic inference (accepted, unused).
    cfg.MODEL.MASK_FORMER.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE = False


def _add_pixel_decoder_config(cfg):
    # Channels of the per-pixel mask embedding.
    cfg.MODEL.SEM_SEG_HEAD.MASK_DIM = 256
    # Deformable-attention encoder layers of the pixel decoder.
    cfg.MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS = 0
    # Registry name of the pixel decoder.
    cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME = "BasePixelDecoder"
    # Backbone levels fed to the deformable encoder, its sampling points and heads.
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES = ["res3", "res4", "res5"]
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS = 4
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS = 8
    # Run the pixel decoder in float32 even under AMP (the official behaviour, forced there by
    # its float32-only operator). False: AMP runs it in half precision on mask2former_ops' kernels.
    cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_FP32 = False


def _add_swin_config(cfg):
    cfg.MODEL.SWIN = _new_node(cfg)
    # Image size of the ImageNet pre-training (sizes the absolute position embedding).
    cfg.MODEL.SWIN.PRETRAIN_IMG_SIZE = 224
    # Patch size of the patch embedding.
    cfg.MODEL.SWIN.PATCH_SIZE = 4
    # Channels of stage 1 (doubled at every stage).
    cfg.MODEL.SWIN.EMBED_DIM = 96
    # Blocks and attention heads of the four stages.
    cfg.MODEL.SWIN.DEPTHS = [2, 2, 6, 2]
    cfg.MODEL.SWIN.NUM_HEADS = [3, 6, 12, 24]
    # Attention window size.
    cfg.MODEL.SWIN.WINDOW_SIZE = 7
    # Hidden width of the MLPs relative to the channels.
    cfg.MODEL.SWIN.MLP_RATIO = 4.0
    # Bias in the qkv projection; scale of q.k (None: head_dim ** -0.5).
    cfg.MODEL.SWIN.QKV_BIAS = True
    cfg.MODEL.SWIN.QK_SCALE = None
    # Dropout, attention dropout and stochastic-depth rate.
    cfg.MODEL.SWIN.DROP_RATE = 0.0
    cfg.MODEL.SWIN.ATTN_DROP_RATE = 0.0
    cfg.MODEL.SWIN.DROP_PATH_RATE = 0.3
    # Absolute position embedding; layer norm after the patch embedding.
    cfg.MODEL.SWIN.APE = False
    cfg.MODEL.SWIN.PATCH_NORM = True
    # Stages returned by the backbone.
    cfg.MODEL.SWIN.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    # Activation checkpointing in the Swin blocks (saves memory, costs time).
    cfg.MODEL.SWIN.USE_CHECKPOINT = False


def _add_joint_training_config(cfg):
    if "DATASETS" not in cfg:
        cfg.DATASETS = _new_node(cfg)
    # Joint training (video_mask2former.d2.joint): one weight per DATASETS.TRAIN entry, which may
    # mix video and image datasets; each training clip comes from dataset i with probability
    # DATASET_RATIO[i] / sum(DATASET_RATIO). Empty: in proportion to the datasets' sizes (one
    # concatenated dataset). The peers' joint configs (VITA) use e.g. [1.0, 0.75] for
    # ("coco2ytvis2019_train", "ytvis_2019_train").
    cfg.DATASETS.DATASET_RATIO = []

    # Image datasets as pseudo-videos (video_mask2former.data.pseudo_video): each of the
    # INPUT.SAMPLING_FRAME_NUM frames is the image under its own random crop / resize / rotation.
    # Defaults: the INPUT.PSEUDO values of the VITA configs (configs/*/vita_*_bs8.yaml), with the
    # differences noted.
    cfg.INPUT.PSEUDO = _new_node(cfg)
    # Extra augmentations, per frame: "brightness", "contrast", "saturation", "rotation" (+-15
    # degrees, angles sorted through the clip as the peers' RandomRotationClip). VITA: rotation.
    cfg.INPUT.PSEUDO.AUGMENTATIONS = ["rotation"]
    # Shorter-edge lengths and longer-edge limit of the resize (VITA's values).
    cfg.INPUT.PSEUDO.MIN_SIZE_TRAIN = (288, 320, 352, 384, 416, 448, 480, 512)
    cfg.INPUT.PSEUDO.MAX_SIZE_TRAIN = 768
    # "choice" / "range": a length per frame (the objects change scale through the clip);
    # "choice_by_clip" / "range_by_clip": one per clip (VITA: "choice_by_clip").
    cfg.INPUT.PSEUDO.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.PSEUDO.CROP = _new_node(cfg)
    # A random crop of the image, a new window per frame (the objects move and may leave the
    # frame). VITA: enabled with these type and size, but one window per clip, applied with
    # probability 1/2 after a resize to a 400-600 shorter edge.
    cfg.INPUT.PSEUDO.CROP.ENABLED = True
    cfg.INPUT.PSEUDO.CROP.TYPE = "absolute_range"
    cfg.INPUT.PSEUDO.CROP.SIZE = (384, 600)


def add_maskformer2_config(cfg):
    """Add the keys of Mask2Former (model, pixel decoder, Swin backbone, solver, input).

    Args:
        cfg (CfgNode): a node from ``detectron2.config.get_cfg()``; modified in place.
    """
    _add_input_config(cfg)
    _add_solver_config(cfg)
    _add_resnet_config(cfg)
    _add_mask_former_config(cfg)
    _add_pixel_decoder_config(cfg)
    _add_swin_config(cfg)


def add_maskformer2_video_config(cfg):
    """Add the keys of the video model: clip sampling, clip augmentations, video inference, and
    joint training with image datasets (dataset ratios, pseudo-video augmentation).

    Call after :func:`add_maskformer2_config`.

    Args:
        cfg (CfgNode): a node from ``detectron2.config.get_cfg()``; modified in place.
    """
    # Frames per training clip (T).
    cfg.INPUT.SAMPLING_FRAME_NUM = 2
    # Clip frames are drawn within +- this many frames of a random reference frame.
    cfg.INPUT.SAMPLING_FRAME_RANGE = 20
    # Shuffle the frame order of a training clip (False: temporal order).
    cfg.INPUT.SAMPLING_FRAME_SHUFFLE = False
    # Extra clip-consistent augmentations by name: "brightness", "contrast", "saturation",
    # "rotation" (applied with the same parameters to every frame of a clip).
    cfg.INPUT.AUGMENTATIONS = []

    # Video inference.
    # Number of (query, class) pairs kept per video, ranked by classification score.
    cfg.MODEL.MASK_FORMER.TEST.TOPK = 10
    # Frames per inference window for long videos; 0 processes the whole video at once.
    cfg.MODEL.MASK_FORMER.TEST.WINDOW_SIZE = 0
    # Frames whose masks are upsampled to the output size at a time (bounds peak memory);
    # 0 upsamples all frames at once.
    cfg.MODEL.MASK_FORMER.TEST.CHUNK_SIZE = 8
    # Precision of evaluation and the demo (video_mask2former.precision): "fp32"; "bf16" / "fp16"
    # (autocast on MODEL.DEVICE; on a CPU without bf16 / fp16 arithmetic, e.g. AVX2-only, the
    # model warns and runs fp32); "auto": fp16 on CUDA when SOLVER.AMP.ENABLED, else fp32. fp32 is
    # the CPU default: low precision changes the results slightly, and few CPUs run it fast.
    cfg.MODEL.INFERENCE_PRECISION = "auto"
    # Run the network through torch.compile at inference (compiled on the first video, again
    # for a new frame size); off by default: compiling takes minutes and pays only on long runs.
    cfg.MODEL.COMPILE = False
    # At CPU inference, keep the memory of large tensors for reuse (mask2former_ops.cpu_cache)
    # instead of page-faulting fresh memory for each: 10-16 % faster at R50 inference here; the
    # memory stays reserved between videos (returned when training resumes).
    cfg.MODEL.CPU_BLOCK_CACHE = True

    if "TEST" not in cfg:
        cfg.TEST = _new_node(cfg)
    # VPQ window lengths in frames of the video panoptic evaluator (VIPSeg: 1, 2, 4, 6, 8, whose
    # mean DVIS++ reports as VPQ; Cityscapes-VPS: 1, 2, 3, 4); each at most the longest video's
    # length.
    cfg.TEST.VPQ_WINDOW_SIZES = [1, 2, 4, 6, 8]

    # Checkpoint loading policy (video_mask2former.checkpoint). False: weights for --eval-only and
    # the demo must fit the model exactly, and a training initialisation (MODEL.WEIGHTS) must
    # provide half of the model or its whole backbone, else loading raises an error listing the
    # keys. True (experts): load whatever fits and only warn.
    cfg.MODEL.ALLOW_PARTIAL_WEIGHTS = False

    _add_joint_training_config(cfg)
