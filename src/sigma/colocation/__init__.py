"""Co-location's pure core: BatchJob DAG progression, Level-0 batch allocatable, the agent's
idle -> suppress -> evict ladder, cache isolation plans and queue fair sharing.

No I/O and no clock reads: the master's controllers, the agent and the simulator pass the
observed state (and `now`) in and carry out the decisions that come back. How the API
validates and prints BatchJobs and NodeSLOs is the API's own (sigma.api.colocation_kinds).
"""
