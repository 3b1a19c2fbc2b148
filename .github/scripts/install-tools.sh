#!/usr/bin/env bash
# Installs the proving ground's tools at the versions and checksums of a tools file.
#
#   install-tools.sh TOOLS_FILE BIN_DIR   # download, check sha256, install into BIN_DIR
#                                         # (and add BIN_DIR to $GITHUB_PATH when set)
#   install-tools.sh --pin TOOLS_FILE     # write the sha256 of each download not pinned yet
#
# A download whose checksum differs from the expected one, or a tool `unpinned`, stops
# the install: nothing unchecked runs on the runner. The expected checksum is the one in
# the tools file, or (`published=URL`) the one the project publishes next to its release,
# fetched from the project's own host; `--pin` turns the latter into the former.
set -euo pipefail

fail() { echo "::error::$*" >&2; exit 1; }

# Prints "name version sha256 url member" for each tool line (charts and comments skipped).
tool_lines() {
    grep -v '^[[:space:]]*#' "$1" | grep -v '^[[:space:]]*$' | grep -v '^chart:' || true
}

# The downloads' folder: global, so the EXIT trap still sees it after the function returns.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

download() {
    local url="$1" target="$2"
    curl --fail --silent --show-error --location --retry 3 --output "$target" "$url"
}

# The sha256 a tool's line expects: its pinned digest, or the published one.
expected_sum() {
    local name="$1" version="$2" sum="$3" url="$4" listing
    case "$sum" in
        published=*)
            listing="$WORK/$name.sha256"
            download "$(printf '%s' "${sum#published=}" | sed "s/{version}/$version/g")" "$listing"
            # A bare digest (kubectl's .sha256), or `digest  file` lines (kind's and helm's
            # .sha256sum, a goreleaser CHECKSUMS, Pulumi's checksums.txt).
            awk -v file="$(basename "$url")" \
                'NF == 1 { print $1; exit } $2 == file || $2 == "*" file { print $1; exit }' \
                "$listing"
            echo "::warning::$name $version: checked against its release's published" \
                "checksum, not one pinned in this repository (install-tools.sh --pin)" >&2
            ;;
        *) echo "$sum" ;;
    esac
}

install_tools() {
    local tools="$1" bin_dir="$2" name version sum url member file actual
    mkdir -p "$bin_dir"
    while read -r name version sum url member; do
        [ "$sum" != "unpinned" ] || fail "$name $version has no checksum in $tools: run" \
            "'$0 --pin $tools' where the network is reachable, and review the diff"
        url="${url//\{version\}/$version}"
        sum="$(expected_sum "$name" "$version" "$sum" "$url")"
        [[ "$sum" =~ ^[0-9a-f]{64}$ ]] || fail "$name: '$sum' is not a sha256"
        file="$WORK/$name.download"
        download "$url" "$file"
        actual="$(sha256sum "$file" | cut -d' ' -f1)"
        [ "$actual" = "$sum" ] || fail "$name $version: sha256 $actual, expected $sum ($url)"
        if [ -z "${member:-}" ]; then
            install -m 0755 "$file" "$bin_dir/$name"
        else
            mkdir -p "$WORK/$name"
            tar -xzf "$file" -C "$WORK/$name"
            if [[ "$member" == */ ]]; then
                find "$WORK/$name/$member" -maxdepth 1 -type f -exec install -m 0755 {} "$bin_dir/" \;
            else
                install -m 0755 "$WORK/$name/$member" "$bin_dir/$(basename "$member")"
            fi
        fi
        echo "installed $name $version"
    done < <(tool_lines "$tools")
    if [ -n "${GITHUB_PATH:-}" ]; then
        echo "$bin_dir" >> "$GITHUB_PATH"
    fi
}

pin_tools() {
    local tools="$1" name version sum url member file actual published
    while read -r name version sum url member; do
        [[ "$sum" =~ ^[0-9a-f]{64}$ ]] && continue
        url="${url//\{version\}/$version}"
        file="$WORK/$name.download"
        download "$url" "$file"
        actual="$(sha256sum "$file" | cut -d' ' -f1)"
        if [[ "$sum" == published=* ]]; then
            published="$(expected_sum "$name" "$version" "$sum" "$url" 2>/dev/null)"
            [ "$actual" = "$published" ] || fail "$name $version: sha256 $actual, but the" \
                "release publishes $published ($url)"
        fi
        # Only this tool's line, only its checksum field.
        sed -i -E "s#^(${name}[[:space:]]+${version}[[:space:]]+)(unpinned|published=[^[:space:]]+)#\\1${actual}#" "$tools"
        echo "pinned $name $version $actual"
    done < <(tool_lines "$tools")
}

case "${1:-}" in
    --pin) pin_tools "$2" ;;
    ""|-*) echo "usage: $0 TOOLS_FILE BIN_DIR | --pin TOOLS_FILE" >&2; exit 2 ;;
    *) install_tools "$1" "$2" ;;
esac
