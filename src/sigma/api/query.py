"""Query parameters as the API reads them: one value per parameter, the same for the
authoriser and the handler.

A parameter given twice is ambiguous: Kubernetes' decoders take the first value, Starlette's
``query_params.get`` the last, and a check that read one while the handler served the other
could be bypassed (``?fieldSelector=spec.nodeName=mine&fieldSelector=`` once listed every pod
to an agent). So a repeated parameter is refused with 400 BadRequest naming it, except the
few Kubernetes defines as lists. Blank values are kept (``fieldSelector=`` is a value, the
empty selector), as Starlette keeps them, so both sides parse the same string the same way.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from sigma.api import errors

# Parameters that are lists in Kubernetes' options (metav1.CreateOptions.DryRun): they may
# repeat, with the same value (dryRun=All&dryRun=All); different values are as ambiguous as a
# repeated single-valued parameter (dryRun=All&dryRun= must not write).
LIST_PARAMETERS = frozenset({"dryRun"})
# Lists whose values differ by design: PodExecOptions.Command (the argv, one value per word)
# and PodPortForwardOptions.Ports. No authorisation decision reads them.
ARGV_PARAMETERS = frozenset({"command", "ports"})


def parse_query(query_string: bytes | str) -> dict[str, str]:
    """The query string as a dict; 400 BadRequest when a single-valued parameter repeats."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes | bytearray) else query_string
    values: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in values and key not in ARGV_PARAMETERS and (key not in LIST_PARAMETERS or values[key] != value):
            raise errors.bad_request(f'the query parameter "{key}" was given more than once: '
                                     "it takes a single value")
        values[key] = value
    return values
