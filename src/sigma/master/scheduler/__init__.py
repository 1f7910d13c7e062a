"""sigma-scheduler: the prod scheduler loop, a thin shell around sigma.scheduling.

- convert: Kubernetes Node/Pod objects -> the core's NodeSpec/PodSpec (pure).
- informer: list + watch of nodes and pods into one queue of deltas.
- cache: nodes, pods and the ClusterSnapshot, kept in step incrementally.
- queue: active / parked / back-off pending pods (reused by the batch scheduler).
- actions: the writes (binding, unschedulable condition + Event, eviction).
- loop: the controller thread tying them together.
"""
