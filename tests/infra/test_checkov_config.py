"""The checkov config for rendered manifests: every skip carries a written reason."""

from __future__ import annotations

import re

import yaml

from infra.tooling.repo import PROJECT_ROOT

CONFIG = PROJECT_ROOT / ".checkov.kubernetes.yaml"


def test_every_skipped_check_has_a_reason_above_it() -> None:
    lines = CONFIG.read_text().splitlines()
    skips = yaml.safe_load(CONFIG.read_text())["skip-check"]
    assert skips and len(set(skips)) == len(skips)
    for check in skips:
        assert re.fullmatch(r"CKV2?_K8S_\d+", check), check
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        reason: list[str] = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            reason.append(line.strip("# "))
        assert len(" ".join(reason)) > 80, f"{check} has no written reason"


def test_ci_runs_checkov_with_this_config_on_every_stack() -> None:
    script = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "--config-file .checkov.kubernetes.yaml" in script
    assert "--framework kubernetes --skip-download" in script
    assert re.search(r"checkov==\d+\.\d+\.\d+", script)
    for stack in ("minikube", "staging", "prod", "dev-"):
        assert stack in script
