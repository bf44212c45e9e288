"""The product reaches Dagster through its public API only (DESIGN.md, rules of the house): a private module or a
private attribute can change in any release, and GPU routing or the gate would break silently.

What the scan of every module under ``titlegen_assets/`` (its syntax tree, not a regex) refuses:

- an import of a private module of Dagster or one of its libraries: a ``dagster`` or ``dagster_*`` module path with a
  part that starts with ``_`` (``dagster._core.launcher``, ``from dagster import _check``, ``dagster_docker._x``),
  and any of ``dagster_shared``, the code Dagster's packages share internally;
- in a module that imports Dagster, an ``x._name`` attribute access, unless it is ``self._name`` (or ``cls._name``)
  inside a class that defines ``_name`` itself (a method, a class attribute, or an assignment to ``self._name``).
  An underscore name the class does not define is inherited, which there means a Dagster base class's private
  (``self._instance`` in a run launcher), and one on any other object is someone else's (``x._get_docker_image()``).
"""

import ast
from pathlib import Path

import titlegen_assets

PRODUCT = Path(titlegen_assets.__file__).parent
#: Dagster's internal shared code: none of it is public API.
INTERNAL_PACKAGES = ("dagster_shared",)


def is_dagster(module: str) -> bool:
    top = module.split(".")[0]
    return top == "dagster" or top.startswith("dagster_")


def is_private_name(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_private_module(module: str) -> bool:
    top, *rest = module.split(".")
    return is_dagster(module) and (top in INTERNAL_PACKAGES or any(is_private_name(part) for part in rest))


def private_imports(tree: ast.AST) -> list[str]:
    """Each import of a private Dagster module, once per module it names (``from m import n`` names ``m``, or ``m.n``
    when ``m`` itself is public)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if is_private_module(node.module) else [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [f"line {node.lineno}: imports {name}" for name in names if is_private_module(name)]
    return found


def imports_dagster(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Import) and any(is_dagster(alias.name) for alias in node.names)
               or isinstance(node, ast.ImportFrom) and node.level == 0 and is_dagster(node.module or "")
               for node in ast.walk(tree))


def defined_by(cls: ast.ClassDef) -> set[str]:
    """The names a class defines itself: its methods and class attributes, and what its methods assign to self."""
    names = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    names |= {node.attr for node in ast.walk(cls) if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")}
    return names


class PrivateAttributes(ast.NodeVisitor):
    """Collects each ``x._name`` access that is not ``self._name``/``cls._name`` on a name the enclosing class defines."""

    def __init__(self):
        self.classes: list[set[str]] = []
        self.found: list[str] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(defined_by(node))
        self.generic_visit(node)
        self.classes.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        own = (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls") and bool(self.classes)
               and node.attr in self.classes[-1])
        if is_private_name(node.attr) and not own:
            self.found.append(f"line {node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)


def private_attributes(tree: ast.AST) -> list[str]:
    if not imports_dagster(tree):
        return []
    visitor = PrivateAttributes()
    visitor.visit(tree)
    return visitor.found


def violations(rule) -> dict[str, list[str]]:
    """{module path: what ``rule`` found in it} for every module of the product where it found something."""
    found = {}
    for path in sorted(PRODUCT.rglob("*.py")):
        problems = rule(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if problems:
            found[str(path.relative_to(PRODUCT.parent))] = problems
    return found


def test_no_module_of_the_product_imports_a_private_dagster_module():
    assert violations(private_imports) == {}


def test_no_module_of_the_product_touches_a_private_attribute_of_a_dagster_object():
    assert violations(private_attributes) == {}


LAUNCHER = '''
from dagster import _check
from dagster._core.launcher import LaunchRunContext
import dagster_docker._utils
from dagster_shared.utils import warnings
from dagster_docker import DockerRunLauncher
from dagster_docker.utils import validate_docker_image


class GpuLauncher(DockerRunLauncher):
    _pool = "gpu"

    def __init__(self):
        self._images = {}

    def launch_run(self, context):
        image = self._image_for(context) or self._get_docker_image(context.job_code_origin)
        self._instance.report_engine_event("launching", context.dagster_run)
        return self._images, self._pool, image.__class__

    def _image_for(self, context):
        return other._images
'''


def test_the_scan_flags_private_imports_and_inherited_private_attributes_but_not_a_class_own():
    tree = ast.parse(LAUNCHER)
    assert private_imports(tree) == ["line 2: imports dagster._check", "line 3: imports dagster._core.launcher",
                                     "line 4: imports dagster_docker._utils", "line 5: imports dagster_shared.utils"]
    assert private_attributes(tree) == ["line 17: self._get_docker_image", "line 18: self._instance",
                                        "line 22: other._images"]


def test_the_scan_leaves_a_module_without_dagster_alone():
    assert private_attributes(ast.parse("import trl\ntrl.trainer.utils._use_triton = None\n")) == []
