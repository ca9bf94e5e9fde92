"""The package tree is the architecture: each layer imports only the layers below it.

Every ``import`` in ``app/`` counts, also those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

#: Lowest first. A module may import its own package and packages of a lower rank only.
LAYERS: dict[str, int] = {
    "app.wecom": 0,  # the protocol: no I/O
    "app.settings": 1,
    "app.infra.metrics": 1,  # metric definitions: every layer above records into them
    "app.infra.greenlets": 1,  # "does gevent run this process?", for the store and above
    "app.infra": 2,
    "app.infra.store": 2,
    "app.infra.api": 3,  # the WeCom API client: its access_token lives in the store
    "app.infra.llm": 3,  # the model client: its conversation history lives in the store
    "app.routing": 4,
    "app.devtools": 4,
    "app.handlers": 5,  # the demo bots: handler modules like a user's
    "app.kf": 5,  # the public facade for 微信客服 handler modules
    "app.llm": 5,  # the configured model, for handler modules
    "app.jobs": 6,
    "app.web": 7,
    "app": 8,  # create_app, python -m app
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The most specific entry of LAYERS that contains ``module``."""
    candidates = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(candidates, key=len)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from app import settings`` imports the module app.settings
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def app_modules() -> dict[str, Path]:
    return {module_name(path): path for path in APP.rglob("*.py")}


def known(target: str, modules: dict[str, Path]) -> bool:
    return target in modules or target == "app"


def test_every_package_has_a_layer():
    unplaced = [name for name in app_modules() if name != "app" and package_of(name) == "app"]
    top_level = {"app.__main__"}
    assert set(unplaced) <= top_level, f"give these a layer in LAYERS: {unplaced}"


def test_no_layer_imports_a_higher_one_or_a_sibling_package():
    modules = app_modules()
    wrong = []
    for name, path in modules.items():
        own = package_of(name)
        for target in imports_of(path):
            if not known(target, modules) or target == "app":
                continue
            other = package_of(target)
            if other == own:
                continue
            if LAYERS[other] >= LAYERS[own]:
                wrong.append(
                    f"{name} imports {target} ({own} {LAYERS[own]} -> {other} {LAYERS[other]})"
                )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_packages():
    modules = app_modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        own = package_of(name)
        for target in imports_of(path):
            if known(target, modules) and target != "app" and package_of(target) != own:
                edges.setdefault(own, set()).add(package_of(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [package for package in edges if reaches(package, package, {package})]
    assert not cycles, f"packages in an import cycle: {sorted(cycles)}"


def test_production_code_never_imports_tests():
    offenders = [
        name
        for name, path in app_modules().items()
        if any(t == "tests" or t.startswith("tests.") for t in imports_of(path))
    ]
    assert not offenders
