"""Trace loaders for `sigma sim`: Alibaba cluster-trace v2017 and v2018, typed and validated.

Each loader takes file paths and returns compact in-memory data (numpy arrays, pyarrow
batches for the full-size v2018 tables). Bad input raises TraceError naming the file, line
and column, or is skipped and counted in a LoadReport; each module says which, case by case.
"""

from sigma.sim.traces.astraced import (
    AsTracedCurves,
    UtilisationSummary,
    v2017_as_traced,
    v2018_cpu_utilisation,
)
from sigma.sim.traces.dag import DagError, TaskName, job_dag, job_dag_from_names, parse_task_name
from sigma.sim.traces.dag_yaml import DagJob, DagTask, load_v2018_dag_jobs
from sigma.sim.traces.errors import LoadReport, TraceError
from sigma.sim.traces.v2017_servers import MachineCapacity, V2017ServerEvents, load_v2017_server_events
from sigma.sim.traces.v2017_tasks import V2017BatchTasks, load_v2017_batch_tasks
from sigma.sim.traces.v2018_cluster import DayUsage, V2018ClusterUsage, load_v2018_cluster_usage
from sigma.sim.traces.v2018_full import V2018_SCHEMAS, V2018Table, read_v2018_table
from sigma.sim.traces.v2018_machines import (
    V2018MachineMeta,
    V2018MachineUsage,
    load_v2018_machine_meta,
    load_v2018_machine_usage,
)

__all__ = [
    "V2018_SCHEMAS",
    "AsTracedCurves",
    "DagError",
    "DagJob",
    "DagTask",
    "DayUsage",
    "LoadReport",
    "MachineCapacity",
    "TaskName",
    "TraceError",
    "UtilisationSummary",
    "V2017BatchTasks",
    "V2017ServerEvents",
    "V2018ClusterUsage",
    "V2018MachineMeta",
    "V2018MachineUsage",
    "V2018Table",
    "job_dag",
    "job_dag_from_names",
    "load_v2017_batch_tasks",
    "load_v2017_server_events",
    "load_v2018_cluster_usage",
    "load_v2018_dag_jobs",
    "load_v2018_machine_meta",
    "load_v2018_machine_usage",
    "parse_task_name",
    "read_v2018_table",
    "v2017_as_traced",
    "v2018_cpu_utilisation",
]
