"""No pickle anywhere in the packages: loading a pickle runs code from the file (DEVELOPERS.md: never
pickle). Checked on the syntax tree, so comments and strings that mention pickle do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("orchestrator", "tools", "indexes", "polymodal", "edge", "app.py")
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve"}
PICKLING_CALLS = {"read_pickle", "to_pickle"}  # pandas


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def pickle_uses(source: str) -> list[str]:
    """`line: what` for each pickling import or call in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: import {n}" for n in names if n.split(".")[0] in PICKLING_MODULES]
        elif isinstance(node, ast.Call):
            func, kw = node.func, {k.arg: k.value for k in node.keywords}
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if owner == "torch" and name == "load" and not _is_true(kw.get("weights_only")):
                found.append(f"{node.lineno}: torch.load without weights_only=True")
            if _is_true(kw.get("allow_pickle")):
                found.append(f"{node.lineno}: {name}(allow_pickle=True)")
            if name in PICKLING_CALLS:
                found.append(f"{node.lineno}: {name}")
    return found


def _sources() -> list[Path]:
    files = []
    for name in PACKAGES:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_the_packages_never_pickle():
    files = _sources()
    assert len(files) > 50
    offenders = [f"{f.relative_to(ROOT)}:{use}" for f in files for use in pickle_uses(f.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import pickle as p",
        "from pickle import loads",
        "import joblib",
        "from joblib import load",
        "import cloudpickle",
        "import torch\nstate = torch.load(path)",
        "import torch\nstate = torch.load(\n    path,\n    map_location='cpu',\n)",
        "import torch\nstate = torch.load(path, weights_only=False)",
        "import numpy as np\na = np.load(path, allow_pickle=True)",
        "import pandas as pd\ndf = pd.read_pickle(path)",
    ],
)
def test_each_pickling_form_is_found(source):
    assert pickle_uses(source)


def test_safe_forms_pass():
    source = (
        "# no pickle here: 'import pickle' in a comment\n"
        "import torch, numpy as np\n"
        "state = torch.load(path, map_location='cpu', weights_only=True)\n"
        "a = np.load(path, allow_pickle=False)\n"
        "note = 'pickle.load is never used'\n"
    )
    assert pickle_uses(source) == []
