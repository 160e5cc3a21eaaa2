"""The exceptions of checkpoint loading, and what a checkpoint file must hold (for messages)."""

__all__ = [
    "EXPECTED_CONTENT",
    "CheckpointFileError",
    "CheckpointMismatchError",
    "HFCheckpointError",
]

# What a checkpoint file must hold, for error messages.
EXPECTED_CONTENT = (
    "expected a .pth or .pkl file holding a model state dict ({'model': {name: tensor}} or "
    "{name: tensor})"
)


class CheckpointFileError(ValueError):
    """The file is not a checkpoint: unreadable (truncated, empty, another format) or no weights."""


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's keys or shapes do not fit the model (the message lists them)."""


class HFCheckpointError(CheckpointFileError):
    """A Hugging Face checkpoint that cannot be read or converted (the message says why)."""
