#!/usr/bin/env bash
# Which images a stack runs, kept where deploys can read it back: as stack config (what
# the program deploys) and as stack tags (what the last *proven* release was).
#
#   release-images.sh set      STACK REGISTRY RELEASE DIGEST_DIR # config from built images
#   release-images.sh use      FROM_STACK TO_STACK [--require]   # config from FROM's tags
#   release-images.sh record   STACK                             # tags from STACK's config
#   release-images.sh rollback STACK                             # config from the release
#                                                                # recorded before the last
#
# DIGEST_DIR holds one file per service (backend, notification, recurring) whose content is
# the image digest (sha256:...). The committed cloud stack files name no images; only
# deploys choose them, and `record` runs after a release passed its smoke test.
set -euo pipefail

apps=(backend notification recurring)

valid_digest() {
    [[ "$1" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "::error::not an image digest: '$1'"; exit 1; }
}

set_images() {
    local stack="$1" registry="$2" release="$3" digests="$4" digest
    pulumi config set --path apps.images.registry "$registry" --stack "$stack"
    pulumi config set --path apps.images.tag "$release" --stack "$stack"
    for app in "${apps[@]}"; do
        digest="$(tr -d '[:space:]' < "$digests/$app")"
        valid_digest "$digest"
        pulumi config set --path "apps.images.digests.$app" "$digest" --stack "$stack"
    done
}

use_release() {
    local from="$1" to="$2" required="${3:-}" prefix="${4:-todo:}" release registry
    release="$(pulumi stack tag get "${prefix}release" --stack "$from" 2>/dev/null || true)"
    if [ -z "$release" ]; then
        if [ "$required" = "--require" ]; then
            echo "::error::$from has no proven release (todo:release tag): deploy it first"
            exit 1
        fi
        # Cloud stack files name no images: without a release, the program stops at
        # preview naming todo:apps.images (a stack that was never deployed).
        echo "::warning::$from has no recorded release (never deployed): $to has no" \
            "images to preview with until a deploy records one"
        return 0
    fi
    registry="$(pulumi stack tag get "${prefix}registry" --stack "$from")"
    local dir
    dir="$(mktemp -d)"
    for app in "${apps[@]}"; do
        pulumi stack tag get "${prefix}digest-$app" --stack "$from" > "$dir/$app"
    done
    set_images "$to" "$registry" "$release" "$dir"
    rm -rf "$dir"
    echo "release=$release" >> "${GITHUB_OUTPUT:-/dev/null}"
}

record_release() {
    local stack="$1" digest previous current
    # Keep the release being replaced, for `rollback`.
    previous="$(pulumi stack tag get todo:release --stack "$stack" 2>/dev/null || true)"
    current="$(pulumi config get --path apps.images.tag --stack "$stack")"
    if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
        for key in release registry "${apps[@]/#/digest-}"; do
            pulumi stack tag set "todo:previous-$key" \
                "$(pulumi stack tag get "todo:$key" --stack "$stack")" --stack "$stack"
        done
    fi
    pulumi stack tag set todo:release "$(pulumi config get --path apps.images.tag --stack "$stack")" --stack "$stack"
    pulumi stack tag set todo:registry "$(pulumi config get --path apps.images.registry --stack "$stack")" --stack "$stack"
    for app in "${apps[@]}"; do
        digest="$(pulumi config get --path "apps.images.digests.$app" --stack "$stack")"
        valid_digest "$digest"
        pulumi stack tag set "todo:digest-$app" "$digest" --stack "$stack"
    done
}

command="${1:-}"
shift || true
case "$command" in
    set) set_images "$@" ;;
    use) use_release "$@" ;;
    record) record_release "$@" ;;
    rollback) use_release "$1" "$1" --require todo:previous- ;;
    *) echo "usage: $0 set|use|record|rollback ..." >&2; exit 2 ;;
esac
