"""The API schemas of batch/v1 Job and CronJob and policy/v1 PodDisruptionBudget, in the
schema DSL of the built-in kinds (field names, types and bounds as Kubernetes declares them)."""

from __future__ import annotations

from sigma.api.schema import (
    CONDITION,
    INT_OR_STRING,
    LABEL_SELECTOR,
    NONNEG32,
    OBJECT_META,
    POD_TEMPLATE,
    STR,
    Schema,
    arr,
    boolean,
    int32,
    int64,
    kind_schema,
    mapof,
    obj,
    string,
)

MAX_INDEXED = 100_000  # completions and parallelism of an Indexed job

POD_FAILURE_POLICY = obj(
    "How failed pods count: the first rule that matches a failed pod decides.",
    rules=arr(obj(
        "A rule: an action, and the exit codes or pod conditions it applies to.",
        action=string("FailJob (the job fails), Ignore (the failure does not count), Count (it counts), "
                      "FailIndex."),
        onExitCodes=obj("Matches when a failed container's exit code is (In) or is not (NotIn) in values.",
                        containerName=STR, operator=string("In or NotIn."),
                        values=arr(int32(), description="Exit codes, sorted, unique, at most 255.")),
        onPodConditions=arr(obj(type=STR, status=STR), description="Matches a pod with one of these conditions."),
    ), description="At most 20 rules.", max_items=20),
)
JOB_SPEC = obj(
    "What a Job runs and how many times.",
    parallelism=NONNEG32.doc("How many pods run at once; default 1."),
    completions=NONNEG32.doc("How many pods must succeed (unset: any success with no pod running ends the job)."),
    activeDeadlineSeconds=int64("Seconds from startTime after which the job fails (DeadlineExceeded).", minimum=0),
    podFailurePolicy=POD_FAILURE_POLICY,
    backoffLimit=NONNEG32.doc("Failures before the job fails (BackoffLimitExceeded); default 6."),
    backoffLimitPerIndex=NONNEG32, maxFailedIndexes=NONNEG32,
    selector=LABEL_SELECTOR.doc("The pods of the job; generated from the job's uid unless manualSelector."),
    manualSelector=boolean("The selector is the user's own (not generated)."),
    template=POD_TEMPLATE.doc("The pods' template; restartPolicy Never or OnFailure."),
    ttlSecondsAfterFinished=NONNEG32.doc("Seconds after the job finished when it is deleted."),
    completionMode=string("NonIndexed (default) or Indexed (one pod per index 0..completions-1)."),
    suspend=boolean("True deletes the job's active pods and starts none until it is false again."),
    podReplacementPolicy=STR, managedBy=STR, successPolicy=obj(rules=arr(obj(
        succeededIndexes=STR, succeededCount=NONNEG32))),
)
JOB_CONDITION = obj(type=STR, status=STR, reason=STR, message=STR, lastProbeTime=STR, lastTransitionTime=STR)
JOB_STATUS = obj(
    "The job's observed state.",
    conditions=arr(JOB_CONDITION, "type"), startTime=STR, completionTime=STR,
    active=NONNEG32, succeeded=NONNEG32, failed=NONNEG32, terminating=NONNEG32, ready=NONNEG32,
    completedIndexes=STR, failedIndexes=STR,
    uncountedTerminatedPods=obj(succeeded=arr(STR), failed=arr(STR)),
)
JOB_SCHEMA = kind_schema(JOB_SPEC, JOB_STATUS, "A Job runs pods until a number of them succeeded.")

JOB_TEMPLATE = obj("The Job a CronJob creates.", metadata=OBJECT_META, spec=JOB_SPEC)
CRON_JOB_SPEC = obj(
    "When and how a CronJob creates Jobs.",
    schedule=string("A cron schedule (minute hour day-of-month month day-of-week) or @hourly, @daily..."),
    timeZone=string("The IANA time zone of the schedule (e.g. Europe/Paris); default UTC."),
    startingDeadlineSeconds=int64("A run more than this many seconds late is skipped.", minimum=0),
    concurrencyPolicy=string("Allow (default), Forbid (skip a run while one is active) or Replace."),
    suspend=boolean("True: no new runs."),
    jobTemplate=JOB_TEMPLATE,
    successfulJobsHistoryLimit=NONNEG32.doc("Finished successful Jobs kept; default 3."),
    failedJobsHistoryLimit=NONNEG32.doc("Failed Jobs kept; default 1."),
)
OBJECT_REFERENCE = obj(kind=STR, namespace=STR, name=STR, uid=STR, apiVersion=STR, resourceVersion=STR,
                       fieldPath=STR)
CRON_JOB_STATUS = obj(
    "The CronJob's observed state.",
    active=arr(OBJECT_REFERENCE, description="The Jobs running now."),
    lastScheduleTime=STR, lastSuccessfulTime=STR,
)
CRON_JOB_SCHEMA = kind_schema(CRON_JOB_SPEC, CRON_JOB_STATUS, "A CronJob creates Jobs on a schedule.")

PDB_SPEC = obj(
    "How many of the selected pods must stay available through voluntary disruptions (evictions).",
    minAvailable=INT_OR_STRING.doc("Pods that must stay available: a number or a percentage."),
    maxUnavailable=INT_OR_STRING.doc("Pods that may be unavailable: a number or a percentage."),
    selector=LABEL_SELECTOR.doc("The pods of the budget (null: none, {}: every pod of the namespace)."),
    unhealthyPodEvictionPolicy=string("IfHealthyBudget (default) or AlwaysAllow: when a not-ready pod may be "
                                      "evicted."),
)
PDB_STATUS = obj(
    "The budget's observed state.",
    observedGeneration=int64(minimum=0), disruptedPods=mapof(STR, "Pods evicted and not yet gone, with the time."),
    disruptionsAllowed=NONNEG32, currentHealthy=NONNEG32, desiredHealthy=NONNEG32, expectedPods=NONNEG32,
    conditions=arr(CONDITION, "type"),
)
PDB_SCHEMA: Schema = kind_schema(PDB_SPEC, PDB_STATUS, "A PodDisruptionBudget limits voluntary disruptions.")
