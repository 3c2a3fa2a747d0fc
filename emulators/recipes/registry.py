"""Recipes registered by name (ACE ``ModuleSelector`` style, like ``emulators.nets.registry``).

A recipe class is registered under one name per variant; a variant is the same class with other
field defaults (a daily variant: another ``timestep``)::

    @register("lai")
    @register("lai-daily", timestep=86_400)
    @dataclass(frozen=True)
    class LAIRecipe(Recipe): ...

    recipe = get("lai-daily", epochs=300)  # validated: timestep and training-config options
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from emulators.recipes.base import Recipe

R = TypeVar("R", bound=type[Recipe])
_REGISTRY: dict[str, tuple[type[Recipe], dict[str, Any]]] = {}


def register(name: str, **defaults: Any) -> Callable[[R], R]:
    """Class decorator: register recipe class ``cls`` as ``name`` with field ``defaults``."""

    def wrap(cls: R) -> R:
        if not (isinstance(cls, type) and issubclass(cls, Recipe)):
            raise TypeError(f"{cls!r} must be a Recipe subclass to be registered")
        if name in _REGISTRY and _REGISTRY[name] != (cls, defaults):
            raise ValueError(f"recipe name {name!r} is already registered")
        _REGISTRY[name] = (cls, defaults)
        return cls

    return wrap


def names() -> tuple[str, ...]:
    """The registered recipe names, sorted."""
    return tuple(sorted(_REGISTRY))


def get(name: str, **options: Any) -> Recipe:
    """The validated recipe ``name`` with ``options`` overriding fields of its training config."""
    try:
        cls, defaults = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown emulator {name!r}; known: {', '.join(names())}") from None
    return cls(name=name, **defaults, options=options)
