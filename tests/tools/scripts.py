"""The scripts of ``tools/`` as modules, for the tests that call their ``main(argv)`` in-process.

``tools/`` holds command lines, not a package (and detectron2 installs a top-level ``tools`` of its
own), so a script is loaded from its file instead of being imported by name.
"""

import importlib.util
import os
from types import ModuleType

TOOLS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "tools")


def load_tool(name: str) -> ModuleType:
    """The module of ``tools/<name>.py`` (its ``if __name__ == "__main__"`` block not run)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS_DIR, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
