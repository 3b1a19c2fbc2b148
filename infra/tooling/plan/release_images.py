"""Images for planning a cloud stack whose file names none.

Staging and prod run the images the deploy workflow built and pinned by digest: it
writes `todo:apps.images` into the stack's config right before `pulumi up`
(`.github/scripts/release-images.sh`), so the stack files carry no images, and a hand-run
`up` without them stops at preview naming the key. An offline plan has no release to
take them from; it plans with placeholders that are plainly not real (the `.invalid`
top-level domain is reserved for names that never resolve, RFC 2606) and says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from apps.contracts.services import APP_IDS

PROJECT_NAME = "todo"
PLACEHOLDER_REGISTRY = "release.invalid/todo"
PLACEHOLDER_TAG = "planned-release"
APPS_KEY = f"{PROJECT_NAME}:apps"
KIND_KEY = f"{PROJECT_NAME}:kind"


def placeholder_digest(app: str) -> str:
    return "sha256:" + hashlib.sha256(f"{PLACEHOLDER_TAG}:{app}".encode()).hexdigest()


def with_release_images(values: Mapping[str, str]) -> dict[str, str]:
    """Engine-form config values, with placeholder release images if they are a cloud
    stack's that name none."""
    result = dict(values)
    if values.get(KIND_KEY) != "cloud":
        return result
    try:
        apps = json.loads(values.get(APPS_KEY, "{}"))
    except json.JSONDecodeError:
        return result  # not an object: the settings validation names the key
    if not isinstance(apps, dict) or "images" in apps:
        return result
    apps["images"] = {
        "registry": PLACEHOLDER_REGISTRY,
        "tag": PLACEHOLDER_TAG,
        "digests": {app: placeholder_digest(app) for app in APP_IDS},
    }
    result[APPS_KEY] = json.dumps(apps)
    return result


def uses_placeholder_images(values: Mapping[str, str]) -> bool:
    """Whether a plan runs on placeholder images (the summary says so)."""
    return PLACEHOLDER_REGISTRY in values.get(APPS_KEY, "")
