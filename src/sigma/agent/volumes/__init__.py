"""Pod volumes (configMap, secret, downwardAPI, projected, emptyDir) and env references
(valueFrom, envFrom) made real on the node: pure planning in plan.py and env.py, files
written by atomic.py, the I/O against the master and the disk in manager.py."""
