"""Entry point of the policy pack: `pulumi preview --policy-pack infra/policy`.

The rules live in `infra/policy/rules/` (standard library only) and are shared with
`todo-infra plan` and the tests; this file only adapts them to pulumi-policy. Settings
come from the pack's config (`--policy-pack-config FILE`), e.g. to allow one Service of
type LoadBalancer or not to require PodDisruptionBudgets on a throw-away stack:

    {"no-load-balancer-services": {"allowedLoadBalancers": ["legacy-ingress"]},
     "pdb-per-app": {"requirePdb": false}}

Policy packs run in their own virtualenv with the pack folder as working directory, so
the repository root is put on the path to import the rules from where they live.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import (  # noqa: E402 (after the path setup above)
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy.rules import (  # noqa: E402
    RESOURCE_RULES,
    STACK_RULES,
    Rule,
    RuleConfig,
    StackWideRule,
    Subject,
)

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedLoadBalancers": {"type": "array", "items": {"type": "string"}, "default": []},
        "requirePdb": {"type": "boolean", "default": True},
    }
)


def _rule_config(config: Mapping[str, Any]) -> RuleConfig:
    return RuleConfig(
        allowed_load_balancers=frozenset(config.get("allowedLoadBalancers") or []),
        require_pdb=bool(config.get("requirePdb", True)),
    )


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        # The engine hands policies plain values, so secretness is unknown here.
        subject = Subject(type=args.resource_type, name=args.name, props=args.props)
        for message in rule.check(subject, _rule_config(args.get_config())):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=(
            EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY
        ),
        config_schema=CONFIG_SCHEMA,
    )


def _stack_policy(rule: StackWideRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        subjects = [
            Subject(type=resource.resource_type, name=resource.name, props=resource.props)
            for resource in args.resources
        ]
        urns = {resource.name: resource.urn for resource in args.resources}
        for name, message in rule.check(subjects, _rule_config(args.get_config())):
            report_violation(message, urns.get(name))

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=(
            EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY
        ),
        config_schema=CONFIG_SCHEMA,
    )


if __name__ == "__main__":
    PolicyPack(
        name="todo-platform",
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=[
            *(_resource_policy(rule) for rule in RESOURCE_RULES),
            *(_stack_policy(rule) for rule in STACK_RULES),
        ],
    )
