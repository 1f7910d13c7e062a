"""Per-topology-domain pod counts, kept up to date incrementally.

Pod anti-affinity and topology spread both ask "how many pods matching selector S (in
namespace NS) run in each domain of topology key K?". Each distinct (K, NS, S) gets one
DomainCounts, built from the snapshot's pods the first time it is asked for and then
adjusted by one increment per placement or removal, never recounted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sigma.scheduling.arrays import IntArray
from sigma.scheduling.labels import NodeLabelIndex, selector_matches
from sigma.scheduling.model import Labels, LabelSelector

LabelGroup = tuple[str, Labels]  # namespace, labels
LabelPair = tuple[str, str, str]  # namespace, label key, label value


@dataclass(frozen=True)
class CountKey:
    topology_key: str
    namespace: str
    selector: LabelSelector


class Domains:
    """The domains of one topology key: `of_node[n]` is node n's domain, or `count` (an
    extra sentinel slot) when the node lacks the label."""

    def __init__(self, labels: NodeLabelIndex, topology_key: str) -> None:
        codes, vocab = labels.codes(topology_key)
        self.count = len(vocab)
        self.of_node: IntArray = np.where(codes >= 0, codes, self.count)
        self.labelled = codes >= 0


class DomainCounts:
    """Matching pods per domain; slot `domains.count` (unlabelled nodes) always stays 0,
    because Kubernetes ignores pods on nodes without the topology label."""

    def __init__(self, key: CountKey, domains: Domains) -> None:
        self.key = key
        self.domains = domains
        self.per_domain: IntArray = np.zeros(domains.count + 1, dtype=np.int64)

    def matches(self, namespace: str, labels: Labels) -> bool:
        return namespace == self.key.namespace and selector_matches(self.key.selector, labels)

    def add(self, node: int, delta: int) -> None:
        domain = self.domains.of_node[node]
        if domain < self.domains.count:
            self.per_domain[domain] += delta


class TopologyCounts:
    """All DomainCounts of one snapshot, and which of them a given pod's labels feed."""

    def __init__(self, labels: NodeLabelIndex) -> None:
        self._labels = labels
        self._domains: dict[str, Domains] = {}
        self._counts: dict[CountKey, DomainCounts] = {}
        self._fed_by: dict[LabelGroup, tuple[DomainCounts, ...]] = {}
        # Pods per node for each distinct (namespace, labels): replicas share labels, so a
        # new counter matches its selector once per group, not once per pod.
        self._groups: dict[LabelGroup, dict[int, int]] = {}
        # Both sides indexed by (namespace, label key, value), so matching a new group or a
        # new counter only looks at the ones sharing a label (matchLabels' first pair).
        self._groups_with: dict[LabelPair, list[LabelGroup]] = {}
        self._counts_with: dict[LabelPair | None, list[DomainCounts]] = {}

    def domains(self, topology_key: str) -> Domains:
        found = self._domains.get(topology_key)
        if found is None:
            found = self._domains[topology_key] = Domains(self._labels, topology_key)
        return found

    def counts(self, key: CountKey) -> DomainCounts:
        """The counts for `key`, built from the pods placed so far on first use."""
        found = self._counts.get(key)
        if found is None:
            found = DomainCounts(key, self.domains(key.topology_key))
            for group in self._candidate_groups(key):
                if found.matches(*group):
                    for node, pods in self._groups[group].items():
                        found.add(node, pods)
                    if group in self._fed_by:
                        self._fed_by[group] += (found,)
            self._counts[key] = found
            self._counts_with.setdefault(_first_pair(key), []).append(found)
        return found

    def _candidate_groups(self, key: CountKey) -> list[LabelGroup]:
        pair = _first_pair(key)
        return list(self._groups) if pair is None else self._groups_with.get(pair, [])

    def _counts_fed_by(self, namespace: str, pod_labels: Labels) -> tuple[DomainCounts, ...]:
        candidates = list(self._counts_with.get(None, []))
        for label_key, value in pod_labels:
            candidates += self._counts_with.get((namespace, label_key, value), [])
        return tuple(c for c in candidates if c.matches(namespace, pod_labels))

    def on_pod(self, namespace: str, pod_labels: Labels, node: int, delta: int) -> None:
        """A pod was placed on (delta=1) or removed from (delta=-1) `node`."""
        group = (namespace, pod_labels)
        per_node = self._groups.get(group)
        if per_node is None:
            per_node = self._groups[group] = {}
            for label_key, value in pod_labels:
                self._groups_with.setdefault((namespace, label_key, value), []).append(group)
        per_node[node] = per_node.get(node, 0) + delta
        fed = self._fed_by.get(group)
        if fed is None:
            fed = self._fed_by[group] = self._counts_fed_by(namespace, pod_labels)
        for counts in fed:
            counts.add(node, delta)


def _first_pair(key: CountKey) -> LabelPair | None:
    """The selector's first matchLabels pair; None if it has none (then it is checked
    against every group)."""
    if not key.selector.match_labels:
        return None
    label_key, value = key.selector.match_labels[0]
    return (key.namespace, label_key, value)
