"""Where a subject's author imports the protocol from (see the README's "Writing a subject");
it is defined with the actions, in ``operator_core.actions.subject``."""

from operator_core.actions.subject import BaseSubject, ExecutionContext, Subject

__all__ = ["BaseSubject", "ExecutionContext", "Subject"]
