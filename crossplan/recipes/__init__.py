"""Recipes: the plan.toml models, loading and validation."""

from crossplan.recipes.loader import find_recipe, from_dict, load, load_text
from crossplan.recipes.models import (
    CopySpec,
    CStep,
    GoStep,
    ImageStep,
    Recipe,
    RustStep,
    ShellStep,
    Step,
)

__all__ = [
    "CStep",
    "CopySpec",
    "GoStep",
    "ImageStep",
    "Recipe",
    "RustStep",
    "ShellStep",
    "Step",
    "find_recipe",
    "from_dict",
    "load",
    "load_text",
]
