"""The API schema of autoscaling/v2 HorizontalPodAutoscaler, in the schema DSL of the built-in
kinds (unknown fields refused with their path, bounds, `kubectl explain`)."""

from __future__ import annotations

from sigma.api.schema import CONDITION, INT64, QTY, STR, Schema, arr, int32, kind_schema, obj, string

_REF = obj("The object to scale: a kind with a scale subresource (Deployment, ReplicaSet).",
           kind=string("The kind: Deployment or ReplicaSet."), name=string("The name, in the autoscaler's namespace."),
           apiVersion=string("The API version; apps/v1."))
_TARGET = obj("The value to keep the metric at.",
              type=string("Utilization (percent of the pods' requests), AverageValue (per pod) or Value.",
                          enum=("Utilization", "AverageValue", "Value")),
              value=QTY.doc("The target value of the metric (Value)."),
              averageValue=QTY.doc("The target average across the pods (AverageValue)."),
              averageUtilization=int32("The target average utilization, percent of the request (Utilization)."))
_RESOURCE = obj("A resource metric (cpu, memory) of the pods, as metrics.k8s.io reports it.",
                name=string("cpu or memory."), target=_TARGET)
_METRIC = obj("One metric to scale on: the autoscaler keeps each at its target, and the most replicas win.",
              type=string("The metric source: Resource.", enum=("Resource", "ContainerResource", "Pods", "Object",
                                                               "External")),
              resource=_RESOURCE)
_POLICY = obj("At most this much change within periodSeconds.",
              type=string("Pods or Percent.", enum=("Pods", "Percent")),
              value=int32("The change allowed (> 0)."),
              periodSeconds=int32("The window the policy holds over, 1 to 1800 seconds."))
_RULES = obj("How fast the autoscaler may scale in one direction.",
             stabilizationWindowSeconds=int32("Past recommendations considered, 0 to 3600 seconds (up: 0, down: "
                                              "300 by default)."),
             selectPolicy=string("Max (the policy allowing the most change), Min, or Disabled.",
                                 enum=("Max", "Min", "Disabled")),
             policies=arr(_POLICY, description="The rate policies."),
             tolerance=QTY.doc("The relative deviation from the target ignored (default 0.1)."))
HPA_SPEC = obj(
    "Scales a Deployment or ReplicaSet to keep its pods' resource usage at a target.",
    scaleTargetRef=_REF,
    minReplicas=int32("The fewest replicas (>= 1); default 1."),
    maxReplicas=int32("The most replicas (>= minReplicas)."),
    metrics=arr(_METRIC, description="What to scale on; default cpu at 80% of the request."),
    behavior=obj("Stabilisation windows and rate policies, up and down.", scaleUp=_RULES, scaleDown=_RULES),
)
_VALUE_STATUS = obj("The metric's current value.", value=QTY, averageValue=QTY.doc("The average across the pods."),
                    averageUtilization=int32("The average utilization, percent of the request."))
HPA_STATUS = obj(
    "What the autoscaler last observed and decided, written by its controller.",
    observedGeneration=INT64,
    lastScaleTime=string("When the target was last scaled (RFC 3339)."),
    currentReplicas=int32("The target's replicas as last seen."),
    desiredReplicas=int32("The replicas last decided."),
    currentMetrics=arr(obj("One metric's last reading.", type=STR,
                           resource=obj(name=STR, current=_VALUE_STATUS)),
                       description="The metrics' last readings, in the order of spec.metrics."),
    conditions=arr(CONDITION, "type", "AbleToScale, ScalingActive, ScalingLimited."),
)
HPA_SCHEMA: Schema = kind_schema(HPA_SPEC, HPA_STATUS, "A horizontal pod autoscaler (autoscaling/v2).")
