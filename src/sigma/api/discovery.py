"""Discovery documents (/api, /apis, /api/v1, /apis/GROUP/VERSION) and /version."""

from __future__ import annotations

import platform
from typing import Any

import sigma
from sigma.api.resources import RESOURCES, SERVED_ELSEWHERE, group_versions

# kubectl compares the server's minor version with its own and warns beyond one minor
# version of skew; Sigma serves the v1.32-era API surface.
KUBE_COMPAT = {"major": "1", "minor": "32"}


def version_info() -> dict[str, Any]:
    return {
        **KUBE_COMPAT,
        "gitVersion": f"v1.32.0-sigma.{sigma.__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list() -> dict[str, Any]:
    groups = []
    for group, versions in group_versions().items():
        if not group:
            continue
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    versions = group_versions().get(group)
    if not group or not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    entries: list[dict[str, Any]] = []
    for r in (*RESOURCES, *SERVED_ELSEWHERE):
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for sub in r.subresources:
            verbs = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
                     "binding": ["create"], "eviction": ["create"], "log": ["get"], "token": ["create"],
                     "exec": ["create", "get"], "attach": ["create", "get"], "portforward": ["create", "get"]}[sub]
            kind = {"scale": "Scale", "binding": "Binding", "eviction": "Eviction",
                    "token": "TokenRequest", "exec": "PodExecOptions", "attach": "PodAttachOptions",
                    "portforward": "PodPortForwardOptions"}.get(sub, r.kind)
            sub_entry: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                         "kind": kind, "verbs": verbs}
            if sub == "scale":
                sub_entry["group"], sub_entry["version"] = "autoscaling", "v1"
            elif sub == "eviction":
                # kubectl drain evicts (rather than deletes) when discovery says so.
                sub_entry["group"], sub_entry["version"] = "policy", "v1"
            elif sub == "token":
                sub_entry["group"], sub_entry["version"] = "authentication.k8s.io", "v1"
            entries.append(sub_entry)
    if not entries:
        return None
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}
