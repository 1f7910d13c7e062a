"""The demo `sigma up` runs: its cluster, its web service and the python its pods run."""
