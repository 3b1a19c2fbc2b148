"""Run the policy rules over a plan (the same rules as the pulumi-policy pack)."""

from __future__ import annotations

from infra.policy.rules import (
    RuleConfig,
    Subject,
    Violation,
    evaluate,
    plaintext_secret_config,
)
from infra.tooling.plan.build import Plan
from infra.tooling.plan.objects import HELM_TYPES

# Stacks whose apps must each have a PodDisruptionBudget (the issue: "a PDB per app in prod").
PDB_STACKS = frozenset({"prod"})


def rule_config_for(stack: str) -> RuleConfig:
    return RuleConfig(require_pdb=stack in PDB_STACKS)


def subjects(plan: Plan) -> list[Subject]:
    """The planned resources as the rules see them; secrets arrive as "[secret]"."""
    return [
        Subject(type=r.type, name=r.name, props=r.inputs, secrets_known=True)
        for r in plan.run.resources.values()
        if r.custom or r.type in HELM_TYPES  # a v4 Chart registers as a component
    ]


def policy_violations(plan: Plan, *, include_advisory: bool = False) -> list[Violation]:
    violations = evaluate(
        subjects(plan), rule_config_for(plan.stack), include_advisory=include_advisory
    )
    for message in plaintext_secret_config(plan.config.values, plan.config.secret_keys):
        violations.append(Violation("no-plaintext-secrets", f"stack {plan.stack}", message))
    return violations
