"""Reading weight pickles (``.pkl``) without running code from them.

A pickle is a program: its ``GLOBAL`` / ``STACK_GLOBAL`` opcodes import any callable by name and
``REDUCE`` calls it, so ``pickle.load`` of a file downloaded from a shared link can run
``os.system``. PyTorch made ``torch.load(weights_only=True)`` its default for this reason; this
module is the same idea for detectron2's weight pickles (the official model zoo's ``.pkl`` files,
ImageNet backbones converted by detectron2's and this project's tools, Caffe2 / Detectron1
files): an unpickler that resolves only the globals such files need, and refuses every other one
*before* anything is called, with one line naming the file and the refused global.

What a weight pickle may hold: dicts (``dict``, ``collections.OrderedDict``), lists, tuples,
sets, strings, bytes (protocol 2 writes them through ``_codecs.encode``), numbers, booleans,
``None``, and NumPy arrays, dtypes and scalars through NumPy's own reconstruction functions.
Python 2 pickles (Caffe2 / Detectron1) are read with ``encoding="latin1"``, as detectron2 does.
Object arrays are safe too: their elements are unpickled by this same unpickler.
"""

import _compat_pickle
import codecs
import collections
import os
import pickle
from typing import Any, BinaryIO, Callable, Dict, Tuple

import numpy as np

__all__ = ["UnsafePickleError", "load_weights_pickle", "ALLOWED_GLOBALS"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global that a weights file has no reason to hold."""


def _numpy_globals() -> Dict[Tuple[str, str], Callable]:
    """NumPy's reconstruction functions under every module name pickles use for them.

    NumPy 1.x writes ``numpy.core.multiarray``, NumPy 2 ``numpy._core.multiarray``; the functions
    are taken from NumPy's own ``__reduce__`` so that the right ones are used whatever NumPy runs.
    """
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy.(_)core.multiarray._reconstruct
    scalar = np.float32(0).__reduce__()[0]  # numpy.(_)core.multiarray.scalar
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # numpy.(_)core.numeric._frombuffer (protocol 5)
    table = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = reconstruct
        table[(module, "scalar")] = scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(module, "_frombuffer")] = frombuffer
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    return table


# (module, name) -> the object an allowed global resolves to. Nothing here can run code: the
# containers only hold what is unpickled into them, and NumPy's functions build arrays and scalars
# from their raw bytes and a dtype.
ALLOWED_GLOBALS: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("_codecs", "encode"): codecs.encode,  # protocol 2's way of writing bytes
    **_numpy_globals(),
}


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (pickles of Python 2, and protocols < 3 written by Python 3), mapped to
        # Python 3's as pickle's own find_class does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source} refers to {module}.{name}, which a weights file has no reason "
                "to hold; refused without running it (a weights .pkl may hold only dicts, "
                "lists, strings, numbers and NumPy arrays). If you trust the file, convert it "
                "in a separate process, or save the weights with torch.save as a .pth"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"{self.source} uses persistent ids (a torch.save file?), which a weights .pkl does "
            "not; give it a .pth name to load it with torch.load"
        )


def load_weights_pickle(file: Any, source: str = "") -> Any:
    """Unpickle a weights ``.pkl`` from ``file`` (a path or a binary file object), refusing
    every global a weights file does not need (module docstring).

    Args:
        file: the path, or an open binary file.
        source (str): the name used in messages (default: the path).

    Raises:
        UnsafePickleError: the pickle names a global outside :data:`ALLOWED_GLOBALS`; nothing
            it names was called.
        pickle.UnpicklingError, EOFError, ...: the data is not a complete pickle.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return _WeightsUnpickler(f, source or os.fspath(file)).load()
    return _WeightsUnpickler(file, source or getattr(file, "name", "<pickle>")).load()
