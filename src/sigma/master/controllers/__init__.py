"""The master's controllers. Importing this package registers each of them with
sigma.master.process.register_controller."""

from sigma.master import scheduler_fuxi as _fuxi_scheduler  # noqa: F401
from sigma.master.controllers import batchjob, deployment, gc, level0, nodelifecycle, predictive, quota  # noqa: F401
from sigma.master.scheduler import loop as _sigma_scheduler  # noqa: F401
