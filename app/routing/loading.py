"""Import a handler module and take its router: ``router = Router()`` or ``register(router)``."""

from __future__ import annotations

import importlib
import traceback
from typing import TypeVar

from app.routing.rules import RuleRouter

R = TypeVar("R", bound=RuleRouter)


class HandlerModuleError(Exception):
    """A handler module cannot be imported, or offers no router; the message says which."""


def load_router(module_name: str, router_class: type[R]) -> R:
    """The module's router: a fresh ``router_class`` passed to its ``register(router)``, else
    its module-level ``router``."""
    module = _import(module_name)
    register = getattr(module, "register", None)
    if callable(register):
        router = router_class()
        register(router)
        return router
    shared = getattr(module, "router", None)
    if isinstance(shared, router_class):
        return shared
    kind = router_class.__name__
    raise HandlerModuleError(
        f"module {module_name!r} defines neither `router = {kind}()` nor `register(router)`"
    )


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise HandlerModuleError(f"no module named {module_name!r}") from None
        raise HandlerModuleError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        # One line: where in the module it broke, and why.
        if isinstance(exc, SyntaxError):
            where = f" ({exc.filename}:{exc.lineno})"
        else:
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise HandlerModuleError(f"importing {module_name!r} failed{where}: {reason}") from None
