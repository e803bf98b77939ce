"""The developer docs against the code: docs/app-api.md's signatures and coverage, README's copy of the default app."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

import smartapp
import smartapp.testing
from smartapp.api.devices import Devices
from smartapp.api.locations import InstalledApp, Locations, Modes, Scenes
from smartapp.api.schedules import Schedules
from smartapp.api.subscriptions import Subscriptions
from smartapp.app import create_app
from smartapp.deadline import Deadline
from smartapp.proactive import installation

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "app-api.md"
README = ROOT / "README.md"

# Every class the reference shows a stub of, by the name the stub uses.
CLASSES = {cls.__name__: cls for cls in (
    smartapp.SmartApp, smartapp.Context, Deadline, smartapp.ConfigValues, smartapp.DeviceRef, smartapp.DeviceList,
    smartapp.ConfigValueError, smartapp.Page, smartapp.Section, smartapp.SmartThingsApi, Devices, Subscriptions,
    Schedules, Locations, Modes, Scenes, InstalledApp, smartapp.ApiError, smartapp.LinkedAccount,
    smartapp.InstallationState, smartapp.testing.AppHarness, smartapp.testing.FakeSmartThings,
    smartapp.testing.TestSigner, smartapp.testing.LoopbackServer, smartapp.testing.Call, smartapp.testing.Reply)}
FUNCTIONS = {"installation": installation, "create_app": create_app}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def is_stub(node: ast.stmt) -> bool:
    """A signature as the reference shows it: a def whose body is `...`, or a class of such defs and fields."""
    if isinstance(node, ast.FunctionDef):
        return len(node.body) == 1 and isinstance(node.body[0], ast.Expr) \
            and getattr(node.body[0].value, "value", None) is Ellipsis
    if isinstance(node, ast.ClassDef):
        return all(is_stub(item) or isinstance(item, ast.AnnAssign) for item in node.body)
    return False


def reference_stubs() -> tuple[dict[str, list[ast.stmt]], list[ast.FunctionDef]]:
    """The stub classes (members merged across blocks, by class name) and the stub functions of the reference."""
    classes: dict[str, list[ast.stmt]] = {}
    functions: list[ast.FunctionDef] = []
    for block in python_blocks(REFERENCE.read_text()):
        try:
            module = ast.parse(block)
        except SyntaxError:
            continue  # an example fragment, not a stub
        if not module.body or not all(is_stub(node) for node in module.body):
            continue
        for node in module.body:
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).extend(node.body)
            else:
                functions.append(node)
    return classes, functions


def source_tree(obj: object) -> ast.stmt:
    return ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0]


def shape(function: ast.FunctionDef) -> tuple[list[str], str, str]:
    returns = ast.unparse(function.returns) if function.returns else ""
    return [ast.unparse(decorator) for decorator in function.decorator_list], ast.unparse(function.args), returns


def defined_methods(cls: type) -> list[ast.FunctionDef]:
    return [node for node in source_tree(cls).body if isinstance(node, ast.FunctionDef)]


def annotation_text(text: str) -> str:
    return ast.unparse(ast.parse(text, mode="eval"))


def instance_attributes(cls: type) -> dict[str, str | None]:
    """What each class of `cls` sets on `self`, with the type its code gives (None when it gives none):
    `self.x: T = ...`, `self.x = x` of a parameter `x: T`, or `self.x = T(...)`."""
    found: dict[str, str | None] = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("smartapp"):
            continue
        for method in defined_methods(base):
            parameters = {arg.arg: arg.annotation for arg in (*method.args.args, *method.args.kwonlyargs)}
            for node in ast.walk(method):
                target = node.target if isinstance(node, ast.AnnAssign) else \
                    node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == "self"):
                    continue
                kind = node.annotation if isinstance(node, ast.AnnAssign) else None
                value = node.value
                if kind is None and isinstance(value, ast.Name):
                    kind = parameters.get(value.id)
                if kind is None and isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                    kind = value.func
                found[target.attr] = ast.unparse(kind) if kind is not None else found.get(target.attr)
    return found


CLASS_STUBS, FUNCTION_STUBS = reference_stubs()


def test_the_reference_shows_stubs_of_every_class_and_function_it_documents():
    assert set(CLASS_STUBS) == set(CLASSES), "a stub names a class the test does not know, or a class lost its stub"
    assert {function.name for function in FUNCTION_STUBS} == set(FUNCTIONS)


@pytest.mark.parametrize("class_name", sorted(CLASSES))
def test_every_method_shown_has_the_signature_the_code_declares(class_name):
    cls = CLASSES[class_name]
    real = defined_methods(cls)
    for stub in (node for node in CLASS_STUBS[class_name] if isinstance(node, ast.FunctionDef)):
        candidates = [shape(node) for node in real if node.name == stub.name]
        assert candidates, f"{class_name}.{stub.name} is in the reference but not in the code"
        assert shape(stub) in candidates, (f"{class_name}.{stub.name}: the reference shows {shape(stub)}, "
                                           f"the code declares {candidates}")


@pytest.mark.parametrize("class_name", sorted(CLASSES))
def test_every_public_method_is_shown(class_name):
    shown = {node.name for node in CLASS_STUBS[class_name] if isinstance(node, ast.FunctionDef)}
    public = {node.name for node in defined_methods(CLASSES[class_name]) if not node.name.startswith("_")}
    assert public - shown == set(), f"{class_name}: public methods missing from docs/app-api.md"


@pytest.mark.parametrize("class_name", sorted(CLASSES))
def test_every_attribute_shown_exists_with_its_declared_type_and_default(class_name):
    cls = CLASSES[class_name]
    declared: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        declared.update(getattr(base, "__annotations__", {}) if base.__module__.startswith("smartapp") else {})
    for stub in (node for node in CLASS_STUBS[class_name] if isinstance(node, ast.AnnAssign)):
        name = ast.unparse(stub.target)
        if name in declared:
            assert annotation_text(ast.unparse(stub.annotation)) == annotation_text(str(declared[name])), \
                f"{class_name}.{name}: the reference's type differs from the code's"
        elif not hasattr(type(class_value := getattr(cls, name, None)), "__get__") and class_value is not None:
            assert ast.unparse(stub.annotation) == type(class_value).__name__, \
                f"{class_name}.{name}: the reference's type differs from the class attribute's"
        elif name in (on_self := instance_attributes(cls)):
            if on_self[name] is not None:
                assert annotation_text(ast.unparse(stub.annotation)) == annotation_text(on_self[name]), \
                    f"{class_name}.{name}: the reference's type differs from the code's ({on_self[name]})"
        else:
            assert hasattr(cls, name), f"{class_name}.{name} does not exist"
        if stub.value is not None:
            assert getattr(cls, name) == ast.literal_eval(stub.value), f"{class_name}.{name}: default differs"


@pytest.mark.parametrize("function_name", sorted(FUNCTIONS))
def test_every_function_shown_has_the_signature_the_code_declares(function_name):
    stub = next(function for function in FUNCTION_STUBS if function.name == function_name)
    assert shape(stub) == shape(source_tree(FUNCTIONS[function_name]))


def test_every_exported_name_has_a_heading_in_the_reference():
    text = REFERENCE.read_text()
    missing = [name for name in (*smartapp.__all__, *smartapp.testing.__all__)
               if not re.search(rf"^#+ .*\b{name}\b", text, flags=re.MULTILINE)]
    assert missing == []


def test_the_readme_shows_the_whole_default_app_as_it_is():
    """Everything after the default app's module docstring, in one block of the README (which keeps one
    blank line between definitions, to fit on a screen)."""
    code = without_blank_runs(after_docstring((ROOT / "smartapp" / "default_app.py").read_text()))
    assert any(without_blank_runs(block) == code for block in python_blocks(README.read_text()))


def after_docstring(source: str) -> str:
    docstring = ast.parse(source).body[0]
    return "".join(source.splitlines(keepends=True)[docstring.end_lineno:])


def without_blank_runs(code: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", code.strip("\n"))


def test_the_type_stub_names_what_the_package_imports_on_first_use():
    """smartapp/__init__.pyi (what type checkers read) and the lazy imports of __init__.py say the same."""
    import importlib

    stub = ast.parse((ROOT / "smartapp" / "__init__.pyi").read_text())
    stubbed = {alias.asname: node.module for node in stub.body if isinstance(node, ast.ImportFrom)
               for alias in node.names}
    assert all(alias.asname == alias.name for node in stub.body if isinstance(node, ast.ImportFrom)
               for alias in node.names)  # "X as X": an explicit re-export
    assert stubbed == smartapp._MODULE_OF
    assert sorted(stubbed) == smartapp.__all__
    for name, module in stubbed.items():
        assert getattr(smartapp, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError):
        smartapp.not_a_public_name  # noqa: B018
