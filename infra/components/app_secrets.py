"""The secrets the three services share, generated once per stack.

Nothing here comes from plain config: the app API token (Dapr → app), the Dapr API
token (app → Dapr) and, unless the stack sets `todo:authJwtSecret`, the JWT signing key
are RandomPasswords, stored in state as secrets and handed over as Kubernetes Secrets.
Dapr reads its tokens from the key `token` (`dapr.io/app-token-secret`,
`dapr.io/api-token-secret`).

Images from a private registry (GHCR packages are private by default for private
repositories) need a pull secret: given `apps.images.pullUsername` and the secret
`todo:imagePullToken`, a `kubernetes.io/dockerconfigjson` Secret that the Deployments and
the migration Job name in `imagePullSecrets`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.kube import labels
from infra.settings import ImageSettings


@dataclass(frozen=True)
class AppSecretsArgs:
    """Where the Secrets go and an optional given JWT key."""

    namespace: pulumi.Input[str]
    """The apps namespace."""
    auth_jwt_secret: pulumi.Input[str] | None = None
    """HS256 key from config (secret); generated when None."""
    images: ImageSettings | None = None
    """Where the images come from: the registry (`ghcr.io/acme` → host `ghcr.io`) and user
    of the pull secret; None (or no `pull_username`) = public or already on the nodes."""
    pull_token: pulumi.Input[str] | None = None
    """That user's token (secret)."""


class AppSecrets(pulumi.ComponentResource):
    """Generated tokens and keys, as Kubernetes Secrets."""

    app_token_secret: pulumi.Output[str]
    """Secret (key `token`) Dapr sends to the apps and the apps expect (APP_API_TOKEN)."""
    dapr_api_token_secret: pulumi.Output[str]
    """Secret (key `token`) the apps send to their sidecar (DAPR_API_TOKEN)."""
    auth_secret: pulumi.Output[str]
    """Secret (key `jwt-secret`) with the JWT verification key (AUTH_JWT_SECRET)."""
    jwt_key: pulumi.Output[str]
    """The JWT key itself, a Pulumi secret: the deploy's smoke test signs its token with it."""
    image_pull_secret: pulumi.Output[str] | None
    """Secret for private images (`imagePullSecrets`); None when not needed."""

    def __init__(
        self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:app_secrets:AppSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app_token = random.RandomPassword(f"{name}-app-token", length=48, special=False, opts=child)
        dapr_token = random.RandomPassword(
            f"{name}-dapr-api-token", length=48, special=False, opts=child
        )
        jwt: pulumi.Input[str]
        if args.auth_jwt_secret is not None:
            jwt = pulumi.Output.secret(args.auth_jwt_secret)
        else:
            # 64 random characters: well above HS256's 256-bit key recommendation.
            jwt = random.RandomPassword(f"{name}-jwt", length=64, special=False, opts=child).result
        self.app_token_secret = self._secret(name, "app-token", {"token": app_token.result}, args)
        self.dapr_api_token_secret = self._secret(
            name, "dapr-api-token", {"token": dapr_token.result}, args
        )
        self.auth_secret = self._secret(name, "auth", {"jwt-secret": jwt}, args)
        self.jwt_key = pulumi.Output.secret(jwt)
        self.image_pull_secret = self._create_pull_secret(name, args)
        self.register_outputs(
            {
                "app_token_secret": self.app_token_secret,
                "dapr_api_token_secret": self.dapr_api_token_secret,
                "auth_secret": self.auth_secret,
                "jwt_key": self.jwt_key,
            }
        )

    def _secret(
        self, name: str, role: str, data: dict[str, pulumi.Input[str]], args: AppSecretsArgs
    ) -> pulumi.Output[str]:
        # Auto-named: a changed value gets a new Secret, so Deployments roll onto it.
        secret = k8s.core.v1.Secret(
            f"{name}-{role}",
            metadata=cast(Any, {"namespace": args.namespace, "labels": labels("todo", role)}),
            type="Opaque",
            string_data=data,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return secret.metadata.apply(lambda m: m["name"])

    def _create_pull_secret(self, name: str, args: AppSecretsArgs) -> pulumi.Output[str] | None:
        images = args.images
        if images is None or images.pull_username is None or args.pull_token is None:
            return None
        host = images.registry.split("/", 1)[0]
        if not host:
            raise ValueError("a pull secret needs the registry's host")
        username = images.pull_username

        def docker_config(token: str) -> str:
            # The `.dockerconfigjson` format (Kubernetes docs, "Pull an Image from a
            # Private Registry"): auths.<host>.auth = base64("user:token").
            auth = base64.b64encode(f"{username}:{token}".encode()).decode()
            return json.dumps({"auths": {host: {"username": username, "auth": auth}}})

        token: pulumi.Output[str] = pulumi.Output.from_input(args.pull_token)
        plain_config: pulumi.Output[str] = token.apply(docker_config)
        config: pulumi.Output[str] = pulumi.Output.secret(plain_config)
        secret = k8s.core.v1.Secret(
            f"{name}-image-pull",
            metadata=cast(
                Any, {"namespace": args.namespace, "labels": labels("todo", "image-pull")}
            ),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": config},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return secret.metadata.apply(lambda m: str(m["name"]))
