"""setup.py declares what the code imports, with requirements.txt's bounds.

Every third-party module imported by the packages, the scripts and the tests (found by parsing
them, including imports inside functions and ``pytest.importorskip``) must come from a
distribution that setup.py declares where it is needed:

- imported when the core is imported (``video_mask2former`` outside ``d2/``, ``mask2former_ops``):
  ``install_requires``;
- imported inside a function of the core (optional features): ``install_requires`` or an extra;
- the detectron2 layer, ``train_net_video.py`` and ``demo_video/``: also the ``[d2]`` extra;
- the tests: also the ``[test]`` extra (``tests/d2``: and ``[d2]``).

torch and torchvision come from the user (as for detectron2) and detectron2 is built from source;
neither is declared. .ci/check_wheel.sh checks the same by installing the built wheel.
"""

import ast
import os
import re
import sys
from typing import Dict, Iterator, List, Set, Tuple

import pytest
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not declared on purpose: provided by the user (torch, torchvision) or built from source.
NOT_DECLARED = {"torch", "torchvision", "detectron2"}
# Import name -> distribution name, where they differ.
DISTRIBUTION_OF = {"cv2": "opencv-python-headless", "PIL": "pillow", "yaml": "pyyaml"}
SETUP_NAMES = ("INSTALL_REQUIRES", "EXPORT_REQUIRES", "HF_REQUIRES", "EXTRAS_REQUIRE")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _setup_requirements() -> Tuple[List[str], Dict[str, List[str]]]:
    """setup.py's ``INSTALL_REQUIRES`` and ``EXTRAS_REQUIRE``, evaluated without running setup()."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        tree = ast.parse(f.read())
    namespace: Dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", None)
            if name in SETUP_NAMES:
                code = compile(ast.Expression(node.value), "setup.py", "eval")
                namespace[name] = eval(code, {"__builtins__": {}}, namespace)
    missing = [name for name in ("INSTALL_REQUIRES", "EXTRAS_REQUIRE") if name not in namespace]
    assert not missing, f"setup.py defines no {missing}"
    return namespace["INSTALL_REQUIRES"], namespace["EXTRAS_REQUIRE"]


def _names(requirements: List[str]) -> Set[str]:
    return {_canonical(Requirement(text).name) for text in requirements}


def _python_files(*paths: str) -> Iterator[str]:
    for path in paths:
        full = os.path.join(ROOT, path)
        if os.path.isfile(full):
            yield full
        for folder, _, files in os.walk(full):
            yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


class _ImportCollector(ast.NodeVisitor):
    """Top-level names of the absolute imports of a module: {name: imported at import time}."""

    def __init__(self):
        self.imports: Dict[str, bool] = {}
        self._depth = 0  # functions around the current node

    def _add(self, module: str) -> None:
        top = module.split(".")[0]
        self.imports[top] = self.imports.get(top, False) or self._depth == 0

    def _function(self, node) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node):
        if node.level == 0:
            self._add(node.module)

    def visit_Call(self, node):
        # pytest.importorskip("name"): an optional import of the tests.
        if getattr(node.func, "attr", None) == "importorskip" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                self._depth += 1
                self._add(node.args[0].value)
                self._depth -= 1
        self.generic_visit(node)


def _first_party() -> Set[str]:
    """Names that this repository provides: its packages and the modules of its folders."""
    names = {"video_mask2former", "mask2former_ops", "tests", "benchmarks"}
    for path in _python_files(
        "tests", "tools", "benchmarks", "demo_video", "datasets", "train_net_video.py"
    ):
        names.add(os.path.splitext(os.path.basename(path))[0])
        names.add(os.path.basename(os.path.dirname(path)))
    return names


def _third_party_imports(*paths: str, exclude: str = None) -> Dict[str, bool]:
    """{distribution: imported at import time} over the Python files under ``paths``."""
    found: Dict[str, bool] = {}
    first_party = _first_party()
    for path in _python_files(*paths):
        if exclude and path.startswith(os.path.join(ROOT, exclude)):
            continue
        collector = _ImportCollector()
        with open(path) as f:
            collector.visit(ast.parse(f.read(), path))
        for module, at_import in collector.imports.items():
            if module in first_party or module in NOT_DECLARED:
                continue
            if module in sys.stdlib_module_names:
                continue
            dist = _canonical(DISTRIBUTION_OF.get(module, module))
            found[dist] = found.get(dist, False) or at_import
    return found


def _undeclared(imports: Dict[str, bool], at_import: Set[str], lazy: Set[str]) -> List[str]:
    return sorted(d for d, eager in imports.items() if d not in (at_import if eager else lazy))


def test_core_imports_are_declared():
    install, extras = _setup_requirements()
    optional = _names(install).union(*(_names(r) for k, r in extras.items() if k != "test"))
    imports = _third_party_imports(
        "video_mask2former", "mask2former_ops", exclude="video_mask2former/d2"
    )
    assert {"numpy", "pycocotools", "opencv-python-headless"} <= set(imports)  # the parser works
    undeclared = _undeclared(imports, _names(install), optional)
    assert not undeclared, f"setup.py: add {undeclared} to install_requires (or an extra if lazy)"


@pytest.mark.parametrize(
    "paths, extras_used",
    [
        (("video_mask2former/d2", "train_net_video.py", "demo_video"), ("d2", "export", "hf")),
        (("tests",), ("test",)),
        (("tests/d2",), ("test", "d2")),
    ],
)
def test_layer_imports_are_declared(paths, extras_used):
    install, extras = _setup_requirements()
    allowed = _names(install).union(*(_names(extras[name]) for name in extras_used))
    exclude = "tests/d2" if paths == ("tests",) else None
    undeclared = _undeclared(_third_party_imports(*paths, exclude=exclude), allowed, allowed)
    assert not undeclared, f"{paths}: declare {undeclared} in setup.py's {extras_used} extras"


def _requirements_txt() -> Dict[str, Requirement]:
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        lines = [line.split("#")[0].strip() for line in f]
    return {_canonical(r.name): r for r in map(Requirement, filter(None, lines))}


def test_declared_requirements_match_requirements_txt():
    """After ``pip install -r requirements.txt``, installing this project adds no package."""
    install, extras = _setup_requirements()
    pinned = _requirements_txt()
    for text in install + [text for group in extras.values() for text in group]:
        req = Requirement(text)
        name = _canonical(req.name)
        assert name not in ("torch", "torchvision"), f"setup.py must not ask for {name}"
        if name in pinned:
            assert req.specifier == pinned[name].specifier, (text, str(pinned[name]))
    missing = sorted(_names(install) - set(pinned))
    assert not missing, f"requirements.txt lacks install_requires {missing}"
