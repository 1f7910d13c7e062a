"""Who a request comes from: a user name, a uid and the groups it belongs to.

The names follow Kubernetes so that the same bindings read the same way: agents are
``system:node:NAME`` in ``system:nodes``, holders of a join token ``system:bootstrap:ID`` in
``system:bootstrappers``, and ``system:masters`` is the group that may do anything.
"""

from __future__ import annotations

from dataclasses import dataclass

MASTERS = "system:masters"
NODES = "system:nodes"
BOOTSTRAPPERS = "system:bootstrappers"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
NODE_PREFIX = "system:node:"
BOOTSTRAP_PREFIX = "system:bootstrap:"
# The master's own identity towards agents (the client certificate of its pods/log proxy).
MASTER_USER = "system:sigma-master"
# Where an agent reads the cluster CA that signs the master's client certificate, and the
# Node annotation with the SHA-256 of the agent's serving certificate, which the master pins.
CLUSTER_CA_PATH = "/sigma/v1/ca"
SERVING_CERT_ANNOTATION = "sigma.io/serving-cert-sha256"


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # Impersonate-Extra-KEY values, as (key, values) pairs (hashable, like the rest).
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def node_name(self) -> str | None:
        """The node an agent's credential is bound to, None for everyone else."""
        if NODES in self.groups and self.name.startswith(NODE_PREFIX):
            return self.name[len(NODE_PREFIX):]
        return None

    def with_authenticated(self) -> User:
        """Every authenticated user is also in system:authenticated, as in Kubernetes."""
        if AUTHENTICATED in self.groups:
            return self
        return User(self.name, self.uid, (*self.groups, AUTHENTICATED))


ANONYMOUS = User("system:anonymous", "", (UNAUTHENTICATED,))


def node_user(node: str) -> User:
    return User(f"{NODE_PREFIX}{node}", "", (NODES, AUTHENTICATED))
