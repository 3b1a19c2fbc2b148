"""The offline harness records what the engine would see, and masks secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.mocks import UnmockedInvokeError
from infra.tooling.plan.runner import (
    StackConfigError,
    config_from_mapping,
    load_stack_config,
    run_program,
)

PROGRAM = textwrap.dedent(
    """
    import pulumi
    import pulumi_kubernetes as k8s
    import pulumi_random as random

    config = pulumi.Config()
    password = random.RandomPassword("password", length=config.require_int("length"))


    class Box(pulumi.ComponentResource):
        def __init__(self, name, opts=None):
            super().__init__("todo:test:Box", name, None, opts)
            child = pulumi.ResourceOptions(parent=self)
            provider = k8s.Provider(f"{name}-k8s", context="minikube", opts=child)
            self.secret = k8s.core.v1.Secret(
                f"{name}-secret",
                metadata={"name": "db"},
                string_data={"password": password.result, "user": "todo"},
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            self.after = k8s.core.v1.ConfigMap(
                f"{name}-after",
                data={"mode": config.require("mode")},
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider, depends_on=[self.secret]
                ),
            )
            self.register_outputs({})


    box = Box("box")
    pulumi.export("password", password.result)
    pulumi.export("token", config.require_secret("token"))
    pulumi.export("mode", config.require("mode"))
    """
)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "__main__.py"
    path.write_text(PROGRAM)
    return path


def _config(mode: str) -> dict[str, object]:
    return {"length": 16, "mode": mode, "token": {"secure": "v1:encrypted"}}


def test_records_parents_providers_and_dependencies(program: Path) -> None:
    run = run_program("unit", config_from_mapping(_config("a")), program=program)
    by_name = {res.name: res for res in run.resources.values()}

    box, secret, after = by_name["box"], by_name["box-secret"], by_name["box-after"]
    assert box.parent == run.stack_urn
    assert secret.parent == box.urn and after.parent == box.urn
    assert secret.provider_urn == by_name["box-k8s"].urn
    assert after.provider_urn == by_name["box-k8s"].urn
    assert secret.urn in after.dependencies
    # The password flows into the Secret: an implicit edge the graph must keep.
    assert by_name["password"].urn in secret.dependencies


def test_masks_secret_inputs_and_outputs(program: Path) -> None:
    run = run_program("unit", config_from_mapping(_config("a")), program=program)
    secret = next(res for res in run.resources.values() if res.name == "box-secret")

    assert secret.has_secrets
    # The Kubernetes SDK marks the whole of stringData secret; the plan must not leak any of it.
    assert secret.inputs["stringData"] == SECRET_MASK
    assert secret.raw_inputs["stringData"]["password"] == "plan-placeholder-password"
    assert run.outputs == {"password": SECRET_MASK, "token": SECRET_MASK, "mode": "a"}


def test_runs_are_isolated(program: Path) -> None:
    first = run_program("one", config_from_mapping(_config("first")), program=program)
    second = run_program("two", config_from_mapping(_config("second")), program=program)

    assert first.outputs["mode"] == "first" and second.outputs["mode"] == "second"
    assert all("::one::" not in urn for urn in second.resources)
    assert len(first.resources) == len(second.resources)


def test_unmocked_invoke_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "__main__.py"
    path.write_text("import pulumi_digitalocean as do\ndo.get_regions()\n")
    with pytest.raises(
        Exception, match="no mock for invoke 'digitalocean:index/getRegions:getRegions'"
    ):
        run_program("unit", config_from_mapping({}), program=path)
    assert issubclass(UnmockedInvokeError, RuntimeError)


def test_unknown_stack_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.minikube.yaml").write_text("config:\n  todo:x: '1'\n")
    assert load_stack_config("minikube", tmp_path).values == {"todo:x": "1"}
    with pytest.raises(StackConfigError, match="known stacks: minikube"):
        load_stack_config("nope", tmp_path)
