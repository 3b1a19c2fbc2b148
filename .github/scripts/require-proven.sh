#!/usr/bin/env bash
# Fails unless the proving ground passed on a commit: the prod deploy's gate.
#
#   require-proven.sh SHA
#
# Passes when a `proving-ground.yml` run concluded `success` for SHA itself (a scheduled or
# manual run on main), or for the head commit of a pull request SHA came from (its
# pull_request run tested that head merged onto main). Needs GH_TOKEN (actions: read,
# pull-requests: read) and GITHUB_REPOSITORY. REST: "List workflow runs for a workflow"
# (head_sha, status filters) and "List pull requests associated with a commit".
set -euo pipefail

WORKFLOW=proving-ground.yml
sha="${1:-}"
[[ "$sha" =~ ^[0-9a-f]{40}$ ]] || { echo "::error::usage: $0 <40-hex commit sha>" >&2; exit 2; }
repo="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}"

successes() {
    gh api "repos/$repo/actions/workflows/$WORKFLOW/runs?head_sha=$1&status=success&per_page=1" \
        --jq '.total_count'
}

count="$(successes "$sha")"
if [ "${count:-0}" -gt 0 ]; then
    echo "proving ground passed on $sha"
    exit 0
fi

heads="$(gh api "repos/$repo/commits/$sha/pulls" --jq '.[].head.sha')"
for head in $heads; do
    count="$(successes "$head")"
    if [ "${count:-0}" -gt 0 ]; then
        echo "proving ground passed on $head, the head of the pull request that made $sha"
        exit 0
    fi
done

echo "::error::no successful proving-ground run for $sha${heads:+ nor for its pull request head(s) $heads}." \
    "Run the proving-ground workflow on main (workflow_dispatch) and promote again." >&2
exit 1
