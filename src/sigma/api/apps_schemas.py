"""The schemas of the apps/v1 kinds beside Deployment: ReplicaSet and DaemonSet, field for
field as Kubernetes serves them (bounds included: replicas and minReadySeconds are int32 >= 0)."""

from __future__ import annotations

from sigma.api.schema import (
    CONDITION,
    LABEL_SELECTOR,
    NONNEG32,
    NONNEG64,
    POD_TEMPLATE,
    STR,
    Schema,
    arr,
    kind_schema,
    obj,
)

INT_OR_PERCENT = Schema("intorstring", minimum=0)

REPLICA_SET_SPEC = obj(
    "The pods a ReplicaSet keeps running: replicas copies of template, found by selector.",
    replicas=NONNEG32, minReadySeconds=NONNEG32, selector=LABEL_SELECTOR, template=POD_TEMPLATE,
)
REPLICA_SET_STATUS = obj(
    replicas=NONNEG32, fullyLabeledReplicas=NONNEG32, readyReplicas=NONNEG32, availableReplicas=NONNEG32,
    terminatingReplicas=NONNEG32, observedGeneration=NONNEG64, conditions=arr(CONDITION, "type"),
)
REPLICA_SET_SCHEMA = kind_schema(REPLICA_SET_SPEC, REPLICA_SET_STATUS,
                                 "A ReplicaSet (apps/v1): a number of identical pods from one template.")

DAEMON_SET_SPEC = obj(
    "One pod from template on every node the template's placement rules admit.",
    selector=LABEL_SELECTOR, template=POD_TEMPLATE, minReadySeconds=NONNEG32, revisionHistoryLimit=NONNEG32,
    updateStrategy=obj(type=STR, rollingUpdate=obj(maxUnavailable=INT_OR_PERCENT, maxSurge=INT_OR_PERCENT)),
)
DAEMON_SET_STATUS = obj(
    currentNumberScheduled=NONNEG32, numberMisscheduled=NONNEG32, desiredNumberScheduled=NONNEG32,
    numberReady=NONNEG32, observedGeneration=NONNEG64, updatedNumberScheduled=NONNEG32,
    numberAvailable=NONNEG32, numberUnavailable=NONNEG32, collisionCount=NONNEG32,
    conditions=arr(CONDITION, "type"),
)
DAEMON_SET_SCHEMA = kind_schema(DAEMON_SET_SPEC, DAEMON_SET_STATUS,
                                "A DaemonSet (apps/v1): one pod per matching node.")
