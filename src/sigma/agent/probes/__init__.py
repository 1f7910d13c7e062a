"""Container probes (startup, liveness, readiness), run by the agent as kubelet runs them.

policy.py decides (pure), handlers.py and netns.py probe (I/O), runner.py schedules them.
"""
