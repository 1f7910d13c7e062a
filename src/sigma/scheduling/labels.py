"""Label matching, two ways: one pod against a selector (Python), and one requirement
against every node at once (numpy masks precomputed per distinct label value)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import numpy as np

from sigma.scheduling.arrays import BoolArray, IntArray
from sigma.scheduling.model import Labels, LabelSelector, NodeSelectorTerm, Operator, Requirement


def requirement_matches(requirement: Requirement, labels: dict[str, str]) -> bool:
    """One matchExpression against one label set (Gt/Lt compare integers)."""
    value = labels.get(requirement.key)
    op = requirement.operator
    if op is Operator.EXISTS:
        return value is not None
    if op is Operator.DOES_NOT_EXIST:
        return value is None
    if op is Operator.NOT_IN:
        return value is None or value not in requirement.values
    if value is None:
        return False
    if op is Operator.IN:
        return value in requirement.values
    number, bound = _as_int(value), _as_int(requirement.values[0]) if requirement.values else None
    if number is None or bound is None:
        return False
    return number > bound if op is Operator.GT else number < bound


def selector_matches(selector: LabelSelector, labels: Labels | dict[str, str]) -> bool:
    """A pod label selector: matchLabels and matchExpressions all hold."""
    as_dict = labels if isinstance(labels, dict) else dict(labels)
    if any(as_dict.get(key) != value for key, value in selector.match_labels):
        return False
    return all(requirement_matches(r, as_dict) for r in selector.match_expressions)


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class NodeLabelIndex:
    """Per label key, every node's value as a small integer code (-1: label absent), so a
    requirement over all nodes is one vectorised comparison. Masks are memoised."""

    def __init__(self, node_labels: Sequence[Labels]) -> None:
        self.node_count = len(node_labels)
        self._codes: dict[str, IntArray] = {}
        self._vocab: dict[str, dict[str, int]] = {}
        for node, pairs in enumerate(node_labels):
            for key, value in pairs:
                vocab = self._vocab.setdefault(key, {})
                codes = self._codes.setdefault(key, np.full(self.node_count, -1, dtype=np.int64))
                codes[node] = vocab.setdefault(value, len(vocab))
        self._memo: dict[object, BoolArray] = {}

    def codes(self, key: str) -> tuple[IntArray, dict[str, int]]:
        """Value codes of `key` per node (-1 where absent) and the value -> code table."""
        missing = np.full(self.node_count, -1, dtype=np.int64)
        return self._codes.get(key, missing), self._vocab.get(key, {})

    def requirement_mask(self, requirement: Requirement) -> BoolArray:
        cached = self._memo.get(requirement)
        if cached is None:
            cached = self._memo[requirement] = self._compute(requirement)
        return cached

    def term_mask(self, term: NodeSelectorTerm) -> BoolArray:
        if not term.match_expressions:
            return np.zeros(self.node_count, dtype=bool)
        masks = [self.requirement_mask(r) for r in term.match_expressions]
        return reduce(np.logical_and, masks)

    def _compute(self, requirement: Requirement) -> BoolArray:
        codes, vocab = self.codes(requirement.key)
        op = requirement.operator
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            present = codes >= 0
            return present if op is Operator.EXISTS else ~present
        if op in (Operator.IN, Operator.NOT_IN):
            wanted = [vocab[v] for v in requirement.values if v in vocab]
            hit = np.isin(codes, wanted)
            return hit if op is Operator.IN else ~hit
        # Gt/Lt: decide once per distinct value, then gather by code.
        per_value = np.array(
            [requirement_matches(requirement, {requirement.key: v}) for v in vocab] + [False], dtype=bool
        )
        return per_value[codes]  # code -1 picks the trailing False: absent label never matches


def node_affinity_mask(
    index: NodeLabelIndex, node_selector: Labels, required: tuple[NodeSelectorTerm, ...] | None
) -> BoolArray:
    """nodeSelector (every pair) AND required node affinity (any term; None = no constraint)."""
    mask = np.ones(index.node_count, dtype=bool)
    for key, value in node_selector:
        mask &= index.requirement_mask(Requirement(key, Operator.IN, (value,)))
    if required is not None:
        any_term = np.zeros(index.node_count, dtype=bool)
        for term in required:
            any_term |= index.term_mask(term)
        mask &= any_term
    return mask
