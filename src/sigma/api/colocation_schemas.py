"""The API schemas of Sigma's co-location kinds, in the schema DSL of the built-in kinds:
BatchJob (its task template is the Pod template itself), NodeSLO and NodeMetric. The API
refuses unknown fields with their path, keeps integers in their bounds and publishes every
field with its description (`kubectl explain batchjob.spec.tasks`); the rules beyond a
schema live with the kinds' pure code (sigma.colocation.jobspec, sigma.colocation.slo)."""

from __future__ import annotations

from sigma.api.netslo_schema import NETWORK_SLO
from sigma.api.schema import (
    NONNEG32,
    NONNEG64,
    POD_TEMPLATE,
    Schema,
    arr,
    free,
    int32,
    kind_schema,
    mapof,
    number,
    obj,
    string,
)
from sigma.colocation.cpuburst import CPU_BURST_ONLY
from sigma.colocation.cpuburst import DEFAULT_PERCENT as DEFAULT_BURST_PERCENT
from sigma.colocation.cpuburst import MAX_PERCENT as MAX_BURST_PERCENT
from sigma.colocation.cpuburst import NONE as BURST_NONE
from sigma.colocation.cpuburst import POLICIES as BURST_POLICIES
from sigma.colocation.jobspec import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PRIORITY_CLASS,
    DEFAULT_QUEUE,
    DEFAULT_RETRY_LIMIT,
    MAX_IN_FLIGHT,
    MAX_INSTANCES,
    MAX_RETRY_LIMIT,
    MAX_TASK_NAME,
    MAX_TASKS,
)
from sigma.colocation.ladder import (
    CFS_QUOTA,
    DEFAULT_MEMORY_HIGH,
    DEFAULT_MEMORY_LOW,
    DEFAULT_QUOTA_FLOOR_MILLIS,
    SUPPRESS_POLICIES,
)
from sigma.colocation.level0 import DEFAULT_THRESHOLDS
from sigma.colocation.slo import CLUSTER_DEFAULT


def _share(description: str) -> Schema:
    return number(f"{description} A fraction between 0 and 1.", minimum=0, maximum=1)


TASK_SCHEMA = obj(
    "One task of the job: `instances` pods made from `template`, started once its dependencies succeeded.",
    name=string(f"The task's name: a lowercase RFC 1123 label of at most {MAX_TASK_NAME} characters, unique in "
                "the job.", max_length=MAX_TASK_NAME),
    instances=int32(f"How many instances (pods) the task runs, 1 to {MAX_INSTANCES}; each succeeds once.",
                    minimum=1, maximum=MAX_INSTANCES),
    retryLimit=int32(f"Failed attempts allowed per instance before the job fails, 0 to {MAX_RETRY_LIMIT}; "
                     f"default {DEFAULT_RETRY_LIMIT}.", minimum=0, maximum=MAX_RETRY_LIMIT),
    dependencies=arr(string(), description="Names of tasks of this job that must all succeed before this one "
                     "starts (the tasks form a DAG).", max_items=MAX_TASKS),
    template=POD_TEMPLATE.doc("The pod template of the instances. Every container requests (or limits) cpu and "
                              "memory; restartPolicy is Never (the job master retries, not the agent)."),
)
BATCH_JOB_SPEC = obj(
    "The job: a DAG of tasks run as batch (BE) pods on reclaimed capacity by fuxi-scheduler.",
    priorityClassName=string(f"The PriorityClass of the instance pods; default {DEFAULT_PRIORITY_CLASS} "
                             "(band 5000-5999)."),
    queue=string(f'The fair-share queue of fuxi-scheduler; default "{DEFAULT_QUEUE}". A label value: '
                 "alphanumerics, '-', '_' or '.', at most 63 characters.", max_length=63),
    deadline=string('An RFC 3339 time such as "2026-11-11T00:00:00Z": the job fails when it passes.'),
    maxInFlight=int32(f"At most this many instance pods live at once, 1 to {MAX_IN_FLIGHT}; default "
                      f"{DEFAULT_MAX_IN_FLIGHT}.", minimum=1, maximum=MAX_IN_FLIGHT),
    tasks=arr(TASK_SCHEMA, "name", f"The tasks, 1 to {MAX_TASKS}.", max_items=MAX_TASKS),
)
_COUNT = NONNEG32
BATCH_JOB_STATUS = obj(
    "What the job master observed, written by the BatchJob controller.",
    phase=string("Pending, Running, Succeeded or Failed."),
    reason=string("A one-word reason for the phase."),
    message=string("The phase's explanation."),
    observedGeneration=NONNEG64.doc("The metadata.generation this status describes."),
    tasks=mapof(obj(instances=_COUNT.doc("The task's instances."), pending=_COUNT.doc("Instances not started."),
                    running=_COUNT.doc("Instances running."), succeeded=_COUNT.doc("Instances succeeded."),
                    failed=_COUNT.doc("Failed attempts."), state=string("The task's state.")),
                "Per task, by name: its counts and state."),
    progress=mapof(obj(succeeded=string("The indices of the succeeded instances, as ranges (\"0-9,12\")."),
                       failedAttempts=mapof(arr(int32()), "Per instance index, its failed attempts.")),
                   "Per task, by name: the durable record the job master resumes from after a restart."),
    startTime=string("When the job started (RFC 3339)."),
    completionTime=string("When the job finished (RFC 3339)."),
)
BATCH_JOB_SCHEMA: Schema = kind_schema(BATCH_JOB_SPEC, BATCH_JOB_STATUS,
                                       "A batch job of sigma.io: a DAG of tasks, each of many instance pods.")


NODE_SLO_SPEC = obj(
    "The co-location settings of a node (the NodeSLO named after it) or of every node without its own "
    f"(the one named {CLUSTER_DEFAULT}). A missing field takes its default.",
    cpuThreshold=_share(f"Level-0: prod + batch CPU stays under this share of capacity; default "
                        f"{DEFAULT_THRESHOLDS.cpu}."),
    memoryThreshold=_share(f"Level-0: prod + batch memory stays under this share of capacity; default "
                           f"{DEFAULT_THRESHOLDS.memory}. At most memoryEvictLow."),
    memoryEvictHigh=_share(f"Agent: batch pods are evicted when node memory use passes this share; default "
                           f"{DEFAULT_MEMORY_HIGH}."),
    memoryEvictLow=_share(f"Agent: ...until node memory use is under this share; default {DEFAULT_MEMORY_LOW}. "
                          "At most memoryEvictHigh."),
    batchCpuFloorMillis=NONNEG64.doc(f"Agent: the CPU-suppress quota of batch never goes below this many "
                                     f"milli-cores; default {DEFAULT_QUOTA_FLOOR_MILLIS}."),
    l3BatchWayShare=_share("Agent: the share of L3 cache ways batch may use (resctrl); default 0.3."),
    batchMemoryBandwidthPercent=int32("Agent: the share of memory bandwidth batch may use, 1 to 100 percent "
                                      "(resctrl MBA); default 30.", minimum=1, maximum=100),
    cpuSuppressPolicy=string(f"Agent: how batch CPU is suppressed: {CFS_QUOTA} (a CFS quota on the batch "
                             "parent cgroup) or cpuset (batch confined to whole CPUs); default cfsQuota.",
                             enum=tuple(SUPPRESS_POLICIES)),
    network=NETWORK_SLO,
    cpuBurstStrategy=obj(
        "Agent: CPU Burst for prod pods with a CPU limit: quota left unused in earlier CFS periods may be "
        "spent at once, so a short spike is not throttled (cpu.cfs_burst_us, cpu.max.burst). Batch never "
        "bursts.",
        policy=string(f"{CPU_BURST_ONLY} gives every prod cgroup with a CPU limit a burst; {BURST_NONE} (default) "
                      "gives none.", enum=BURST_POLICIES),
        cpuBurstPercent=int32(f"The burst as a percent of the cgroup's quota; default {DEFAULT_BURST_PERCENT}. "
                              "Linux caps a burst at the quota, so 100 and above give one whole quota.",
                              minimum=0, maximum=MAX_BURST_PERCENT),
    ),
)
NODE_SLO_SCHEMA: Schema = kind_schema(NODE_SLO_SPEC, obj("A NodeSLO has no status."),
                                      "Co-location thresholds of a node (sigma.io).")

_MILLIS = NONNEG64.doc("CPU in milli-cores.")
_BYTES = NONNEG64.doc("Memory working set in bytes.")
NODE_METRIC_STATUS = obj(
    "The node's usage, written by its agent every few seconds.",
    timestamp=free("When the readings were taken: an RFC 3339 time, or seconds since the epoch."),
    window_s=NONNEG64.doc("The window, in seconds, the peaks are taken over."),
    sample_window_s=number("The seconds the CPU rates were measured over (since the previous report).", minimum=0),
    node=obj("The whole machine.", cpu_millis=_MILLIS, memory_bytes=_BYTES,
             capacity_cpu_millis=NONNEG64.doc("The node's CPU capacity in milli-cores."),
             capacity_memory_bytes=NONNEG64.doc("The node's memory capacity in bytes.")),
    prod=obj("The prod (non-batch) pods together.", cpu_millis=_MILLIS, memory_bytes=_BYTES,
             cpu_peak_millis=NONNEG64.doc("The highest prod CPU over the window, in milli-cores."),
             memory_peak_bytes=NONNEG64.doc("The highest prod memory over the window, in bytes.")),
    batch=obj("The batch (BE) pods together.", cpu_millis=_MILLIS, memory_bytes=_BYTES),
    predicted=obj("Prod usage expected within the lead time (optional).", cpu_millis=_MILLIS, memory_bytes=_BYTES),
    pods=arr(obj(namespace=string("The pod's namespace."), name=string("The pod's name."),
                 qos=string("The pod's QoS label (BE for batch)."), cpu_millis=_MILLIS, memory_bytes=_BYTES,
                 containers=arr(obj("One container's usage.", name=string("The container's name."),
                                    cpu_millis=_MILLIS, memory_bytes=_BYTES),
                                description="Each container's usage (metrics.k8s.io PodMetrics).")),
             description="Each pod's usage."),
)
NODE_METRIC_SCHEMA: Schema = kind_schema(obj("A NodeMetric has no spec: its agent reports in status."),
                                         NODE_METRIC_STATUS, "A node's usage as its agent reports it (sigma.io).")
