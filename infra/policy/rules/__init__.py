"""The platform's policy rules: plain functions over a resource's type and inputs.

The same functions back the pulumi-policy pack (`infra/policy/__main__.py`, used with
`pulumi preview --policy-pack infra/policy`) and the offline checks (`todo-infra plan`
and the tests, which run them over every stack's planned resources). They use only
the standard library, so the pack's own virtualenv needs nothing but pulumi-policy.

Every rule returns messages; an empty list means the resource complies. Inputs use
the engine's (camelCase) names. Where the caller knows which values are secret (the
offline plan does), those values arrive as `SECRET_MASK`; the real policy engine hands
the pack plain values instead, so checks that need to know secretness only run offline
(`Subject.secrets_known`).

Modules: `model` (subjects, rule records, markers), `workloads`, `secrets`, and
`catalogue` (the rule lists and `evaluate`).
"""

from __future__ import annotations

from infra.policy.rules.catalogue import RESOURCE_RULES, STACK_RULES, evaluate
from infra.policy.rules.model import (
    CREDENTIALS_IN_URL,
    HELM_TYPES,
    LONG_RUNNING_KINDS,
    SECRET_MASK,
    SECRET_NAME,
    WORKLOAD_KINDS,
    PodView,
    ResourceRule,
    Rule,
    RuleConfig,
    StackRule,
    StackWideRule,
    Subject,
    Violation,
    pod_of,
)
from infra.policy.rules.secrets import check_no_plaintext_secrets, plaintext_secret_config
from infra.policy.rules.workloads import (
    check_image_digests,
    check_no_load_balancer,
    check_pdb_per_app,
    check_pinned_images,
    check_probes,
    check_requests_and_limits,
    check_security_context,
    image_reference_problem,
)

__all__ = [
    "CREDENTIALS_IN_URL",
    "HELM_TYPES",
    "LONG_RUNNING_KINDS",
    "PodView",
    "RESOURCE_RULES",
    "ResourceRule",
    "Rule",
    "RuleConfig",
    "SECRET_MASK",
    "SECRET_NAME",
    "STACK_RULES",
    "StackRule",
    "StackWideRule",
    "Subject",
    "Violation",
    "WORKLOAD_KINDS",
    "check_image_digests",
    "check_no_load_balancer",
    "check_no_plaintext_secrets",
    "check_pdb_per_app",
    "check_pinned_images",
    "check_probes",
    "check_requests_and_limits",
    "check_security_context",
    "evaluate",
    "image_reference_problem",
    "plaintext_secret_config",
    "pod_of",
]
