"""What a master runs, in one place: the schedulers and controllers of a leader's term, each
built from the in-process client and the master's options (periods and timeouts, e.g.
``Master(url, options={"node_grace_s": 2, "pod_eviction_timeout_s": 3})``).

The kinds it serves and their admission are wired by sigma.api.admission.install; the routes
beside the API (dashboard, P2P tracker) by sigma.master.process.Master.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from sigma.client.local import LocalClient
from sigma.colocation.level0 import DEFAULT_STALENESS_S
from sigma.colocation.queues import parse_queues
from sigma.master.controllers import (
    batchjob,
    cronjob,
    daemonset,
    deployment_rs,
    disruption,
    endpointslice,
    gc,
    hpa,
    job,
    job_plan,
    level0,
    nodelifecycle,
    podcidr,
    predictive,
    quota,
    rbac_aggregation,
    replicaset,
    serviceaccounts,
)
from sigma.master.scheduler import loop as sigma_scheduler
from sigma.master.scheduler.fuxi import CHUNK, FuxiScheduler


class Controller(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...


def controllers(client: LocalClient, options: dict[str, Any]) -> list[Controller]:
    def seconds(key: str, default: float) -> float:
        return float(options.get(key, default))

    return [
        # The two schedulers: prod (kube-scheduler's role) and batch (FuxiMaster's).
        sigma_scheduler.SchedulerLoop(client),
        FuxiScheduler(client, parse_queues(options.get("fuxi_queues")), int(options.get("fuxi_chunk", CHUNK))),
        # Workloads: Deployments and BatchJobs create and replace their pods.
        # Deployments own ReplicaSets, which own pods; DaemonSets one pod per matching node.
        deployment_rs.DeploymentController(client, resync_s=seconds("deployment_resync_s", deployment_rs.RESYNC_S)),
        replicaset.ReplicaSetController(client, resync_s=seconds("replicaset_resync_s", replicaset.RESYNC_S)),
        daemonset.DaemonSetController(client, resync_s=seconds("daemonset_resync_s", daemonset.RESYNC_S)),
        batchjob.BatchJobController(client, resync_s=seconds("batchjob_resync_s", batchjob.RESYNC_S)),
        # batch/v1 Job and CronJob.
        job.JobController(client, backoff=job_plan.Backoff(seconds("job_backoff_base_s", 10.0),
                                                           seconds("job_backoff_cap_s", 360.0))),
        cronjob.CronJobController(client),
        # Services: the EndpointSlices of the pods each one selects.
        endpointslice.EndpointSliceController(
            client, resync_s=seconds("endpointslice_resync_s", endpointslice.RESYNC_S),
            max_per_slice=int(options.get("max_endpoints_per_slice", endpointslice.MAX_PER_SLICE))),
        # Co-location: Level-0's batch allocatable, and scaling ahead of the load.
        level0.Level0Controller(client, period_s=seconds("level0_period_s", level0.PERIOD_S),
                                staleness_s=seconds("level0_staleness_s", DEFAULT_STALENESS_S)),
        predictive.PredictiveController(
            client, period_s=seconds("predictive_period_s", predictive.PERIOD_S),
            refit_s=seconds("predictive_refit_s", predictive.REFIT_S),
            default_step_s=float(options["predictive_step_s"]) if "predictive_step_s" in options else None),
        # HorizontalPodAutoscalers: replicas from the pods' usage (what metrics.k8s.io serves).
        hpa.HpaController(client, period_s=seconds("hpa_period_s", hpa.PERIOD_S)),
        # Housekeeping: dead nodes, orphans, quota usage.
        nodelifecycle.NodeLifecycleController(client, nodelifecycle.NodeLifecycleOptions.from_options(options)),
        gc.GarbageCollector(client, seconds("gc_period_s", gc.SWEEP_EVERY_S)),
        quota.QuotaController(client),
        # Pod networking: each Node's spec.podCIDR, carved from --cluster-cidr.
        podcidr.PodCidrController(client, *podcidr.cluster_cidrs_of(options)),
        # PodDisruptionBudgets' status (how many disruptions each allows).
        disruption.DisruptionController(client),
        # Every namespace's default ServiceAccount and kube-root-ca.crt ConfigMap.
        serviceaccounts.ServiceAccountsController(client, str(options.get("root_ca_pem", "")),
                                                  seconds("serviceaccounts_period_s", serviceaccounts.PERIOD_S)),
        # RBAC: the rules of aggregated ClusterRoles (admin, edit, view and any with an aggregationRule).
        rbac_aggregation.ClusterRoleAggregationController(client, seconds("rbac_aggregation_period_s",
                                                                          rbac_aggregation.PERIOD_S)),
    ]

