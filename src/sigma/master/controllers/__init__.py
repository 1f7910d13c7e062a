"""The master's controllers. Importing this package registers each of them with
sigma.master.process.register_controller."""

from sigma.master.controllers import deployment, gc, nodelifecycle  # noqa: F401
from sigma.master.scheduler import loop as _sigma_scheduler  # noqa: F401
