"""The lazy DigitalOcean SDK import: same objects, far fewer modules loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from infra.tooling.plan.lazy_sdk import _likely_modules
from infra.tooling.repo import PROJECT_ROOT

CHECK = textwrap.dedent(
    """
    import importlib, json, sys, types
    from infra.tooling.plan import lazy_sdk
    lazy_sdk.install()
    import pulumi_digitalocean as do
    from pulumi_digitalocean import Vpc

    report = {
        "cluster_module": do.KubernetesCluster.__module__,
        "pool_args_module": do.KubernetesClusterNodePoolArgs.__module__,
        "versions_is_function": callable(do.get_kubernetes_versions)
        and not isinstance(do.get_kubernetes_versions, types.ModuleType),
        "vpc": Vpc is do.vpc.Vpc,
        "outputs": do.outputs.__name__,
        "config": do.config.__name__,
    }
    report["loaded"] = len([m for m in sys.modules if m.startswith("pulumi_digitalocean.")])
    try:
        do.NoSuchThing
    except AttributeError as error:
        report["missing"] = str(error)
    # Every name the eager package exports resolves to the very same object.
    mismatches = []
    for line in open(do.__file__):
        if line.startswith("from .") and line.rstrip().endswith("import *"):
            sub = importlib.import_module("pulumi_digitalocean." + line.split()[1][1:])
            for name in getattr(sub, "__all__", []):
                if getattr(do, name) is not getattr(sub, name):
                    mismatches.append(name)
    report["mismatches"] = mismatches

    # pulumi_kubernetes' API group packages load the same way.
    import pulumi_kubernetes as k8s
    report["secret"] = k8s.core.v1.Secret.__module__
    report["secret_args"] = k8s.core.v1.SecretArgs.__module__
    core = [m for m in sys.modules if m.startswith("pulumi_kubernetes.core.v1.")]
    report["k8s_loaded"] = len(core)
    k8s_mismatches = []
    for group in ("core.v1", "apps.v1", "networking.v1", "policy.v1", "batch.v1"):
        package = importlib.import_module("pulumi_kubernetes." + group)
        for line in open(package.__file__):
            if line.startswith("from .") and line.rstrip().endswith("import *"):
                sub = importlib.import_module(package.__name__ + "." + line.split()[1][1:])
                for name in getattr(sub, "__all__", []):
                    if getattr(package, name) is not getattr(sub, name):
                        k8s_mismatches.append(group + "." + name)
    report["k8s_mismatches"] = k8s_mismatches
    print(json.dumps(report))
    """
)


def test_lazy_package_exports_the_same_objects() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["cluster_module"] == "pulumi_digitalocean.kubernetes_cluster"
    assert report["pool_args_module"] == "pulumi_digitalocean._inputs"
    assert report["versions_is_function"] and report["vpc"]
    assert report["outputs"] == "pulumi_digitalocean.outputs"
    assert report["config"] == "pulumi_digitalocean.config"
    # A handful of modules instead of ~190.
    assert report["loaded"] < 20
    assert "has no attribute 'NoSuchThing'" in report["missing"]
    assert report["mismatches"] == []
    assert report["secret"] == "pulumi_kubernetes.core.v1.Secret"
    assert report["secret_args"] == "pulumi_kubernetes.core.v1._inputs"
    assert report["k8s_loaded"] < 10  # of ~120 modules in core/v1
    assert report["k8s_mismatches"] == []


def test_generated_names_map_to_their_modules() -> None:
    assert _likely_modules("KubernetesCluster")[0] == "kubernetes_cluster"
    assert _likely_modules("KubernetesClusterArgs")[0] == "kubernetes_cluster"
    assert _likely_modules("AwaitableGetKubernetesVersionsResult")[0] == "get_kubernetes_versions"
    assert _likely_modules("get_kubernetes_versions_output") == ["get_kubernetes_versions"]
    assert _likely_modules("DeploymentArgs")[:2] == ["deployment", "Deployment"]
