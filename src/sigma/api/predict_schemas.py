"""The API schema of the PredictiveScaler, in the schema DSL of the built-in kinds: the API
refuses unknown fields with their path, keeps numbers in their bounds and publishes every
field with its description (`kubectl explain predictivescaler.spec`); the rules beyond a
schema live with the kind's pure code (sigma.predict.scalerspec)."""

from __future__ import annotations

from sigma.api.schema import NONNEG32, PORT, Schema, arr, boolean, free, int64, kind_schema, number, obj, string
from sigma.predict.scalerspec import MAX_HISTORY_S, MAX_TIME_SCALE

_SERIES = arr(arr(number()), description="[[time, value], ...], times in seconds since the epoch (wall clock).")
_POLICY = obj("At most this much change within periodSeconds.",
              type=string("Pods or Percent.", enum=("Pods", "Percent")),
              value=int64("The change allowed (> 0).", minimum=1),
              periodSeconds=int64("The window the policy holds over, 1 to 1800 seconds.", minimum=1, maximum=1800))
_RULES = obj("How fast the scaler may scale in one direction.",
             stabilizationWindowSeconds=number("Past recommendations considered, 0 to 3600 seconds (up: 0, down: "
                                               "reactive.scaleDownStabilizationSeconds by default).",
                                               minimum=0, maximum=3600),
             selectPolicy=string("Max (the policy allowing the most change), Min, or Disabled.",
                                 enum=("Max", "Min", "Disabled")),
             policies=arr(_POLICY, description="The rate policies; default Kubernetes' when the direction is given."))
PREDICTIVE_SCALER_SPEC = obj(
    "Scales a Deployment ahead of its load: replicas from a forecast of the metric, plus a reactive correction.",
    scaleTargetRef=obj("The Deployment to scale.", apiVersion=string("apps/v1."), kind=string("Deployment."),
                       name=string("The Deployment's name, in the scaler's namespace.")),
    metric=obj("What the load is measured in.",
               type=string("cpu (summed pod CPU from NodeMetric, in milli-cores) or prometheus (scraped from "
                           "the pods).", enum=("cpu", "prometheus")),
               port=PORT.doc("prometheus: the pods' metrics port, 1 to 65535."),
               path=string("prometheus: the metrics path; default /metrics."),
               name=string("prometheus: the metric's name."),
               rate=boolean("prometheus: use the per-second rate of a counter; default true for a name "
                            "ending in _total."),
               aggregate=string("prometheus: how the pods' readings combine: sum (each pod reports its share; "
                                "the default) or max (each pod reports the whole service's load).",
                                enum=("sum", "max"))),
    targetPerReplica=number("The metric units one replica should carry (> 0)."),
    minReplicas=NONNEG32.doc("The fewest replicas; default 1."),
    maxReplicas=NONNEG32.doc("The most replicas (>= minReplicas)."),
    leadSeconds=number("Pods must be Ready this long before the load arrives; default 300.", minimum=0),
    historySeconds=number(f"How much history feeds the forecaster, 3600 to {MAX_HISTORY_S:.0f}; default 14 days.",
                          minimum=3600, maximum=MAX_HISTORY_S),
    stepSeconds=number("One decision per step, 1 to 3600 seconds; default 60.", minimum=1, maximum=3600),
    quantile=number("Replicas are provisioned from this forecast quantile, in (0.5, 1); default 0.9."),
    calendar=arr(obj("A known event: the load is multiplied during it.",
                     name=string("The event's name."),
                     start=string("When it starts: an RFC 3339 wall-clock time."),
                     durationSeconds=number("How long it lasts (> 0)."),
                     multiplier=number("The load's multiplier during it (> 0).")),
                 description="Known events (sales, holidays) the history cannot foresee."),
    reactive=obj("The correction from the observed load.",
                 enabled=boolean("Default true."),
                 tolerance=number("Relative deviation ignored, in [0, 1); default 0.1.", minimum=0),
                 scaleDownStabilizationSeconds=number("Scale down only to the highest recommendation of this "
                                                      "window, 0 to 3600; default 300.", minimum=0, maximum=3600)),
    behavior=obj("The HorizontalPodAutoscaler's stabilisation windows and rate policies, on the final decision "
                 "(seconds on the scaler's clock). A direction given takes Kubernetes' defaults for what it leaves "
                 "out; a direction left out has no rate policy.", scaleUp=_RULES, scaleDown=_RULES),
    timeScale=number(f"The load's clock runs this many times faster than the wall's, 1 to {MAX_TIME_SCALE:.0f}; "
                     "default 1.", minimum=1, maximum=MAX_TIME_SCALE),
)
PREDICTIVE_SCALER_STATUS = obj(
    "What the scaler decided, written by its controller every step.",
    desiredReplicas=NONNEG32.doc("The replicas decided at the last step."),
    currentReplicas=NONNEG32.doc("The target's live pods."),
    readyReplicas=NONNEG32.doc("The target's Ready pods."),
    currentMetric=number("The metric's last value."),
    forecastNow=number("The forecast mean for now."),
    forecastError=number("MAPE of the forecasts over the last day."),
    reason=string("Why the last decision was taken."),
    calendarNote=string("The calendar events that have ended: never applied ahead again."),
    source=string("Which part decided: forecast, reactive, bounds..."),
    lastStepTime=number("The last step, in seconds since the epoch."),
    lastScaleTime=string("When the target was last scaled (RFC 3339)."),
    actual=_SERIES.doc("The metric over the last six hours."),
    forecast=_SERIES.doc("The forecast mean ahead."),
    forecastUpper=_SERIES.doc("The forecast at spec.quantile ahead."),
    nextPeak=obj("The highest forecast ahead.", time=number("Seconds since the epoch."), value=number("The value.")),
    reservation=obj("Prod CPU reserved ahead of the peak on the nodes of the target's pods (read by Level-0).",
                    cpuMillis=number("The extra CPU, in milli-cores.", minimum=0),
                    memoryBytes=number("The extra memory, in bytes.", minimum=0),
                    peakTime=number("When the peak is expected, seconds since the epoch."),
                    until=number("The reservation lapses then unless renewed."),
                    reason=string("Why."),
                    nodes=arr(obj(node=string("The node."), cpuMillis=int64("Milli-cores reserved there.", minimum=0),
                                  memoryBytes=int64("Bytes reserved there.", minimum=0)),
                              description="Per node.")),
    stabilization=free("The controller's state across restarts (opaque)."),
    history=free("The controller's metric history across restarts (opaque)."),
)
PREDICTIVE_SCALER_SCHEMA: Schema = kind_schema(PREDICTIVE_SCALER_SPEC, PREDICTIVE_SCALER_STATUS,
                                               "Predictive horizontal scaling of a Deployment (sigma.io).")
