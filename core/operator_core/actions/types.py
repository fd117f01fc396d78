"""The seeds' import path for the models, which live in ``operator_core.model.types``."""

from operator_core.model.types import *  # noqa: F403
from operator_core.model.types import __all__  # noqa: F401
