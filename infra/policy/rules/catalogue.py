"""The rules the pack enforces, and `evaluate` over a set of resources."""

from __future__ import annotations

from collections.abc import Sequence

from infra.policy.rules.model import Rule, RuleConfig, StackWideRule, Subject, Violation
from infra.policy.rules.secrets import check_no_plaintext_secrets
from infra.policy.rules.workloads import (
    check_image_digests,
    check_no_load_balancer,
    check_pdb_per_app,
    check_pinned_images,
    check_probes,
    check_requests_and_limits,
    check_security_context,
)

RESOURCE_RULES: tuple[Rule, ...] = (
    Rule(
        "container-security-context",
        "Containers run as non-root with a read-only root filesystem, no privilege "
        "escalation, all capabilities dropped and the RuntimeDefault seccomp profile.",
        check_security_context,
    ),
    Rule(
        "requests-and-limits",
        "Every container (and the Dapr sidecar) sets CPU and memory requests and limits.",
        check_requests_and_limits,
    ),
    Rule(
        "probes",
        "Long-running containers have readiness and liveness probes.",
        check_probes,
    ),
    Rule(
        "pinned-images",
        "Images carry a tag other than latest (or a digest); Helm charts pin one version.",
        check_pinned_images,
    ),
    Rule(
        "image-digests",
        "Images are pinned by digest where possible (advisory).",
        check_image_digests,
        mandatory=False,
    ),
    Rule(
        "no-load-balancer-services",
        "No Service of type LoadBalancer: the Gateway is the only way in.",
        check_no_load_balancer,
    ),
    Rule(
        "no-plaintext-secrets",
        "Secrets are secret outputs and reach containers only through Secrets.",
        check_no_plaintext_secrets,
    ),
)

STACK_RULES: tuple[StackWideRule, ...] = (
    StackWideRule(
        "pdb-per-app",
        "Every app Deployment has a PodDisruptionBudget (prod).",
        check_pdb_per_app,
    ),
)


def evaluate(
    subjects: Sequence[Subject], config: RuleConfig, *, include_advisory: bool = False
) -> list[Violation]:
    """Every violation of every rule over a set of resources."""
    violations = []
    for rule in RESOURCE_RULES:
        if not rule.mandatory and not include_advisory:
            continue
        for subject in subjects:
            for message in rule.check(subject, config):
                violations.append(Violation(rule.name, f"{subject.type}::{subject.name}", message))
    for stack_rule in STACK_RULES:
        for name, message in stack_rule.check(subjects, config):
            violations.append(Violation(stack_rule.name, name, message))
    return violations
