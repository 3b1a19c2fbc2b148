"""`todo-infra diff` on real plans: the real program planned twice with a config change.

The first group plans the program for the minikube stack (the one that needs no base
stack outputs) under mocks, writes the plans with the real `todo-infra plan` writer and
diffs the files. The second group pins the diff's rules (replacement, named lists,
renames, secrets, rendering limits) on small hand-made plans.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from infra.tooling.cli import app as cli_app
from infra.tooling.commands.diff import diff_revision
from infra.tooling.delivery.diff_render import (
    GITHUB_COMMENT_LIMIT,
    render_json,
    render_markdown,
    render_text,
)
from infra.tooling.delivery.plan_diff import Action, PlanDiff, SecretState, diff_plans, short_type
from infra.tooling.delivery.plan_files import Plan, PlanFileError, load_plan, parse_plan
from infra.tooling.plan.artifacts import write_plan
from infra.tooling.plan.build import execute
from infra.tooling.plan.runner import config_from_mapping
from infra.tooling.plan.secret_digest import secret_digests, value_digest
from infra.tooling.repo import PROJECT_ROOT

STACK = "minikube"
CIPHER_A = "v1:rotation-one-ciphertext"
CIPHER_B = "v1:rotation-two-ciphertext"


def _stack_file_config() -> dict[str, Any]:
    document = yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{STACK}.yaml").read_text())
    config: dict[str, Any] = document["config"]
    return config


PlanMaker = Callable[[str, Callable[[dict[str, Any]], None] | None], Plan]


@pytest.fixture(scope="module")
def make_plan(tmp_path_factory: pytest.TempPathFactory) -> PlanMaker:
    """Plan the real program with the stack file's config, edited by `change`."""
    root = tmp_path_factory.mktemp("plans")

    def make(label: str, change: Callable[[dict[str, Any]], None] | None = None) -> Plan:
        raw = copy.deepcopy(_stack_file_config())
        if change is not None:
            change(raw)
        result = execute(STACK, config=config_from_mapping(raw))
        out = root / label
        write_plan(result.run, result.objects, result.critical, out)
        return load_plan(out)

    return make


def _set_image_tag(tag: str) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw["todo:apps"]["images"]["tag"] = tag

    return change


def _set_jwt_secret(ciphertext: str | None) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw.pop("todo:authJwtSecret", None)
        if ciphertext is not None:
            raw["todo:authJwtSecret"] = {"secure": ciphertext}

    return change


def _everything_rendered(diff: PlanDiff) -> str:
    console = Console(record=True, width=200)
    render_text(diff, console, title="t")
    return "\n".join([render_markdown(diff, title="t"), render_json(diff), console.export_text()])


def test_same_config_plans_identically(make_plan: PlanMaker) -> None:
    diff = diff_plans(make_plan("same-a", None), make_plan("same-b", None))
    assert diff.changes == ()
    assert diff.unchanged > 20
    assert diff.secret_digests  # the writer records digests for masked inputs


def test_changed_image_tag_updates_the_workloads(make_plan: PlanMaker) -> None:
    base = make_plan("tag-base", None)
    head = make_plan("tag-head", _set_image_tag("0123abcd"))
    diff = diff_plans(base, head)

    image_fields = [
        (change, field)
        for change in diff.changes
        for field in change.fields
        if field.path.endswith(".image") and "todo-" in str(field.after)
    ]
    assert image_fields, "no image field changed"
    for change, field in image_fields:
        assert str(field.before).endswith(":dev") and str(field.after).endswith(":0123abcd")
        # Deployments roll; a Job's pod template is immutable, so the migration Job is replaced.
        if change.type == "kubernetes:apps/v1:Deployment":
            assert change.action is Action.UPDATE, change
        if change.type == "kubernetes:batch/v1:Job":
            assert change.action is Action.REPLACE
            assert field.replaces is not None and "template" in field.replaces.reason
    deployments = {c.name for c, _ in image_fields if c.type.endswith(":Deployment")}
    assert len(deployments) == 3, deployments  # backend, notification, recurring
    assert not diff.of(Action.CREATE) and not diff.of(Action.DELETE)

    markdown = render_markdown(diff, title="Offline plan diff")
    assert "0123abcd" in markdown and "forces replacement" in markdown


def test_added_resource_and_a_secret_that_comes_with_it(make_plan: PlanMaker) -> None:
    # With `authJwtSecret` unset, the program generates the key: one RandomPassword more.
    base = make_plan("jwt-config", _set_jwt_secret(CIPHER_A))
    head = make_plan("jwt-generated", _set_jwt_secret(None))
    diff = diff_plans(base, head)

    created = diff.of(Action.CREATE)
    assert [c.type for c in created] == ["random:index/randomPassword:RandomPassword"]
    assert created[0].name.endswith("-jwt")
    secret_fields = [f for c in diff.changes for f in c.fields if f.secret is not None]
    assert secret_fields, "the JWT Secret's data changes and must be reported"
    assert {f.secret for f in secret_fields} <= {SecretState.CHANGED, SecretState.MAY_CHANGE}
    rendered = _everything_rendered(diff)
    assert CIPHER_A not in rendered and "plan-placeholder" not in rendered


def test_rotated_secret_shows_as_changed_without_leaking(make_plan: PlanMaker) -> None:
    base = make_plan("rotate-a", _set_jwt_secret(CIPHER_A))
    head = make_plan("rotate-b", _set_jwt_secret(CIPHER_B))
    diff = diff_plans(base, head)

    secret_fields = [(c, f) for c in diff.changes for f in c.fields if f.secret is not None]
    assert secret_fields, "a rotated secret must show up"
    for change, field in secret_fields:
        assert field.secret is SecretState.CHANGED
        assert field.before == field.after == "[secret]"
        # pulumi-kubernetes replaces a Secret whose data changes.
        if change.type == "kubernetes:core/v1:Secret":
            assert change.action is Action.REPLACE
    # Nothing but what consumes the key changes.
    assert all(f.secret is not None for c in diff.changes for f in c.fields)

    rendered = _everything_rendered(diff)
    for leak in (CIPHER_A, CIPHER_B, "plan-placeholder", "rotation-"):
        assert leak not in rendered
    assert "🔒 secret (changed)" in rendered

    # Nor do the plan files carry anything but masks and digests.
    for plan in (base, head):
        text = Path(plan.source).read_text()
        assert "plan-placeholder-todo-authJwtSecret" not in text and CIPHER_A not in text


def test_cli_diffs_two_plan_directories(make_plan: PlanMaker, tmp_path: Path) -> None:
    base = Path(make_plan("cli-base", None).source).parent
    head = Path(make_plan("cli-head", _set_image_tag("feedbeef")).source).parent
    out = tmp_path / "comment.md"

    result = CliRunner().invoke(
        cli_app, ["diff", str(base), str(head), "--format", "markdown", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    body = out.read_text()
    assert body.startswith("<!-- todo-infra-offline-diff -->")
    assert "feedbeef" in body and len(body) < GITHUB_COMMENT_LIMIT

    result = CliRunner().invoke(cli_app, ["diff", str(base), str(head), "--exit-code"])
    assert result.exit_code == 2
    assert "to update" in result.output

    result = CliRunner().invoke(cli_app, ["diff", str(base), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no resources.json" in result.output


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_base_ref_is_planned_from_git(tmp_path: Path) -> None:
    """`--base REF` plans the committed revision and the working tree, and diffs them."""
    repo = tmp_path / "repo"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", "HEAD"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    # The working tree's program and stack file, so that the test plans this checkout.
    for path in ("infra", "stacks", "Pulumi.yaml"):
        source, target = PROJECT_ROOT / path, repo / path
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "--quiet"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "base"], check=True)
    stack_file = repo / "stacks" / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(stack_file.read_text().replace("tag: dev", "tag: c0ffee00"))

    diffs = diff_revision("HEAD", [STACK], repo=repo)

    diff = diffs[STACK]
    changed = {f.after for c in diff.changes for f in c.fields if f.path.endswith(".image")}
    assert changed and all(str(image).endswith(":c0ffee00") for image in changed)


# ----------------------------------------------------------------------------- rules


def _resource(name: str, type_: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:s::todo::{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": None,
        "provider": extra.pop("provider", None),
        "dependencies": extra.pop("dependencies", []),
        "inputs": inputs,
        **extra,
    }


def _plan(*resources: dict[str, Any]) -> Plan:
    return parse_plan({"stack": "s", "resources": list(resources)}, "test")


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _deployment(image: str, env: list[dict[str, Any]], selector: str = "api") -> dict[str, Any]:
    return _resource(
        "api",
        DEPLOYMENT,
        {
            "metadata": {"name": "api", "namespace": "todo"},
            "spec": {
                "selector": {"matchLabels": {"app": selector}},
                "template": {"spec": {"containers": [{"name": "api", "image": image, "env": env}]}},
            },
        },
    )


def test_named_list_items_are_matched_by_name() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    inserted = [{"name": "A", "value": "1"}, {"name": "NEW", "value": "x"}, env[1]]
    diff = diff_plans(_plan(_deployment("img:1", env)), _plan(_deployment("img:2", inserted)))

    (change,) = diff.changes
    assert change.action is Action.UPDATE
    paths = {f.path: (f.before, f.after) for f in change.fields}
    container = "spec.template.spec.containers[name=api]"
    assert paths[f"{container}.image"] == ("img:1", "img:2")
    assert f"{container}.env[name=NEW]" in paths  # one insertion, not a shifted list
    assert len(paths) == 2


def test_immutable_fields_force_replacement() -> None:
    diff = diff_plans(_plan(_deployment("i", [])), _plan(_deployment("i", [], selector="web")))
    (change,) = diff.changes
    assert change.action is Action.REPLACE
    assert change.replace_reasons == ("`spec.selector` is immutable",)
    assert any("deleted before" in note for note in change.notes)  # fixed name


@pytest.mark.parametrize(
    ("type_", "before", "after", "replaced"),
    [
        ("kubernetes:core/v1:ConfigMap", {"data": {"a": "1"}}, {"data": {"a": "2"}}, True),
        ("kubernetes:core/v1:Service", {"spec": {"ports": [1]}}, {"spec": {"ports": [2]}}, False),
        (
            "kubernetes:apps/v1:StatefulSet",
            {"spec": {"volumeClaimTemplates": [{"a": 1}]}},
            {"spec": {"volumeClaimTemplates": [{"a": 2}]}},
            True,
        ),
        (
            "digitalocean:index/kubernetesCluster:KubernetesCluster",
            {"region": "fra1", "version": "1.33"},
            {"region": "ams3", "version": "1.33"},
            True,
        ),
        (
            "digitalocean:index/kubernetesCluster:KubernetesCluster",
            {"region": "fra1", "version": "1.33"},
            {"region": "fra1", "version": "1.34"},
            False,
        ),
        ("random:index/randomPassword:RandomPassword", {"length": 32}, {"length": 48}, True),
        ("kubernetes:helm.sh/v3:Release", {"version": "1"}, {"version": "2"}, False),
        ("kubernetes:helm.sh/v3:Release", {"namespace": "a"}, {"namespace": "b"}, True),
    ],
)
def test_replacement_estimates(
    type_: str, before: dict[str, Any], after: dict[str, Any], replaced: bool
) -> None:
    diff = diff_plans(_plan(_resource("r", type_, before)), _plan(_resource("r", type_, after)))
    (change,) = diff.changes
    assert (change.action is Action.REPLACE) is replaced


def test_mutable_config_maps_when_the_provider_says_so() -> None:
    provider = _resource("k8s", "pulumi:providers:kubernetes", {"enableConfigMapMutable": "true"})
    provider_urn = provider["urn"]

    def config_map(value: str) -> dict[str, Any]:
        return _resource(
            "cm", "kubernetes:core/v1:ConfigMap", {"data": {"a": value}}, provider=provider_urn
        )

    diff = diff_plans(_plan(provider, config_map("1")), _plan(provider, config_map("2")))
    assert [c.action for c in diff.changes] == [Action.UPDATE]


def test_logical_rename_of_the_same_object_is_flagged() -> None:
    inputs = {"metadata": {"name": "api", "namespace": "todo"}}
    base = _plan(_resource("old-name", "kubernetes:core/v1:Service", inputs))
    head = _plan(_resource("new-name", "kubernetes:core/v1:Service", inputs))
    diff = diff_plans(base, head)
    assert [c.action for c in diff.changes] == [Action.CREATE, Action.DELETE]
    assert "alias" in diff.changes[0].notes[0]


def test_secrets_by_digest_and_by_dependency() -> None:
    masked = {"stringData": "[secret]", "metadata": {"name": "s"}}

    def secret(digest: str, deps: list[str]) -> dict[str, Any]:
        return _resource(
            "s",
            "kubernetes:core/v1:Secret",
            masked,
            secretDigests={"stringData": digest},
            dependencies=deps,
        )

    password_type = "random:index/randomPassword:RandomPassword"
    pw_urn = _resource("pw", password_type, {})["urn"]
    pw = _resource("pw", password_type, {"length": 32})
    pw_longer = _resource("pw", password_type, {"length": 64})

    same = diff_plans(_plan(pw, secret("aa", [pw_urn])), _plan(pw, secret("aa", [pw_urn])))
    assert same.changes == ()

    rotated = diff_plans(_plan(pw, secret("aa", [pw_urn])), _plan(pw, secret("bb", [pw_urn])))
    (change,) = rotated.changes
    assert change.fields[0].secret is SecretState.CHANGED and change.action is Action.REPLACE

    # Same stand-in digest, but the password it is made from is regenerated.
    regenerated = diff_plans(
        _plan(pw, secret("aa", [pw_urn])), _plan(pw_longer, secret("aa", [pw_urn]))
    )
    states = {c.name: [f.secret for f in c.fields] for c in regenerated.changes}
    assert states["s"] == [SecretState.MAY_CHANGE]


def test_value_that_becomes_secret_is_never_shown() -> None:
    base = _plan(_resource("c", "kubernetes:core/v1:ConfigMap", {"data": {"k": "visible-1"}}))
    head = _plan(_resource("c", "kubernetes:core/v1:ConfigMap", {"data": {"k": "[secret]"}}))
    diff = diff_plans(base, head)
    (field,) = diff.changes[0].fields
    assert field.secret is SecretState.BECAME_SECRET
    assert "visible-1" not in _everything_rendered(diff)
    assert not diff.secret_digests and diff.notes  # the head plan has no digests for it


def test_secret_digests_follow_the_diff_paths() -> None:
    masked = {"spec": {"env": [{"name": "TOKEN", "value": "[secret]"}]}}
    raw = {"spec": {"env": [{"name": "TOKEN", "value": "stand-in"}]}}
    digests = secret_digests(masked, raw)
    assert digests == {"spec.env[name=TOKEN].value": value_digest("stand-in")}
    assert "stand-in" not in json.dumps(digests)


def test_markdown_escapes_and_fits_a_comment() -> None:
    many = [
        _resource(f"cm{i}", "kubernetes:core/v1:ConfigMap", {"data": {"k": f"a|b`c\n{i}" * 40}})
        for i in range(400)
    ]
    changed = [
        _resource(f"cm{i}", "kubernetes:core/v1:ConfigMap", {"data": {"k": f"x{i}" * 40}})
        for i in range(400)
    ]
    diff = diff_plans(_plan(*many), _plan(*changed))
    body = render_markdown(diff, title="big", marker="m")
    assert len(body) < GITHUB_COMMENT_LIMIT
    assert body.startswith("<!-- m -->") and "more, cut to fit a comment" in body
    table_rows = [line for line in body.splitlines() if line.startswith("| `data.k`")]
    assert table_rows and all(line.count(" | ") == 3 for line in table_rows)  # no broken cells


def test_plan_files_are_validated(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="no resources.json"):
        load_plan(tmp_path)
    (tmp_path / "resources.json").write_text("{not json")
    with pytest.raises(PlanFileError, match="not valid JSON"):
        load_plan(tmp_path)
    with pytest.raises(PlanFileError, match="lacks type"):
        parse_plan([{"name": "x"}], "t")
    # A mapping keyed by URN (older writers) is read too.
    plan = parse_plan({"urn:pulumi:s::p::t::n": {"type": "t", "name": "n"}}, "t")
    assert list(plan.resources) == ["urn:pulumi:s::p::t::n"]


def test_short_types() -> None:
    assert short_type(DEPLOYMENT) == "apps/v1:Deployment"
    assert short_type("digitalocean:index/vpc:Vpc") == "digitalocean:Vpc"
    assert (
        short_type("todo:fastapi_service:FastApiService") == "todo:fastapi_service:FastApiService"
    )
    assert short_type("pulumi:pulumi:Stack") == "pulumi:pulumi:Stack"


def test_cli_per_stack_directories_report_a_missing_side(tmp_path: Path) -> None:
    service = "kubernetes:core/v1:Service"
    for side, port in (("base", 80), ("head", 8080)):
        for stack in ("staging", "prod"):
            if side == "base" and stack == "prod":
                continue  # planning prod failed on the base side
            document = {"resources": [_resource("svc", service, {"spec": {"port": port}})]}
            directory = tmp_path / side / stack
            directory.mkdir(parents=True)
            (directory / "resources.json").write_text(json.dumps(document))
    out = tmp_path / "comment.md"
    result = CliRunner().invoke(
        cli_app,
        [
            "diff",
            str(tmp_path / "base"),
            str(tmp_path / "head"),
            "--stack",
            "staging",
            "--stack",
            "prod",
            "--format",
            "markdown",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    body = out.read_text()
    assert "`staging`" in body and "`8080`" in body
    assert "`prod`: no plan on the base side" in body
    assert "to delete" not in body.split("`prod`")[1]  # no fake "delete everything"
