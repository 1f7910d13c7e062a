"""sigma-scheduler: the prod scheduler loop, a thin shell around sigma.scheduling.

- convert: Kubernetes Node/Pod objects -> the core's NodeSpec/PodSpec (pure).
- informer: list + watch of nodes and pods into queues of deltas; one shared informer
  per resource in the master, fanned out to every subscriber.
- cache: nodes, pods and the ClusterSnapshot, kept in step incrementally.
- queue: active / parked / back-off pending pods (reused by the batch scheduler).
- actions: the writes (binding, unschedulable condition + Event, eviction).
- base: the informer-fed shell both schedulers share (cache + queue + wake-ups).
- loop: the sigma-scheduler (prod) on that shell; sigma.master.scheduler.fuxi is the batch one.
"""
