"""The platform's policy pack (`pulumi preview --policy-pack infra/policy`) and its rules."""
