"""Real processes for end-to-end tests: a `sigma master` on a free loopback port (the same
launcher the benchmarks use). Every process started here is stopped by its fixture, also
when the test fails."""

from sigma.bench.masterproc import MasterProcess
from sigma.lab.netutil import free_port

__all__ = ["MasterProcess", "free_port"]
