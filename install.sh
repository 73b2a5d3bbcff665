#!/bin/sh
# Installs the hookcli release binary for this OS and CPU, after checking its SHA-256:
#
#   curl -fsSL https://github.com/hookcli/hookcli/releases/latest/download/install.sh | sh
#
# Settings, from the environment:
#   HOOKCLI_VERSION      latest (the default), or a version like 0.1.0
#   HOOKCLI_INSTALL_DIR  where the binary goes [default: ~/.local/bin]
#   HOOKCLI_REPO         the GitHub repository, owner/name [default: hookcli/hookcli]
#   HOOKCLI_BASE_URL     the releases URL [default: https://github.com/$HOOKCLI_REPO/releases]
#   HOOKCLI_TARGET       the target triple, instead of the one this machine is
#
# Exit codes: 0 installed; 1 failed (download, checksum, unpacking, writing); 3 no release asset
# for this version and target (the GitHub Action then builds with cargo install instead).
set -eu

fail() {
    echo "install.sh: $1" >&2
    exit "${2:-1}"
}

target() {
    if [ -n "${HOOKCLI_TARGET:-}" ]; then
        echo "$HOOKCLI_TARGET"
        return
    fi
    case "$(uname -m)" in
        x86_64 | amd64) cpu=x86_64 ;;
        aarch64 | arm64) cpu=aarch64 ;;
        *) fail "no release for the CPU $(uname -m): build from source with cargo install --locked hookcli" 3 ;;
    esac
    case "$(uname -s)" in
        Linux) echo "$cpu-unknown-linux-musl" ;;
        Darwin) echo "$cpu-apple-darwin" ;;
        MINGW* | MSYS* | CYGWIN*) echo "$cpu-pc-windows-msvc" ;;
        *) fail "no release for $(uname -s): build from source with cargo install --locked hookcli" 3 ;;
    esac
}

# download URL FILE: 0 when fetched, 3 when the server has no such file (404), 1 otherwise.
download() {
    if command -v curl >/dev/null 2>&1; then
        code=$(curl -sSL --retry 2 -o "$2" -w '%{http_code}' "$1") || return 1
        case "$code" in
            2??) return 0 ;;
            404) return 3 ;;
            *) echo "install.sh: $1 answered $code" >&2; return 1 ;;
        esac
    elif command -v wget >/dev/null 2>&1; then
        # wget exits 8 for an error answer from the server, a missing file among them.
        wget -q -O "$2" "$1" && return 0
        [ $? -eq 8 ] && return 3
        return 1
    fi
    fail "neither curl nor wget is installed"
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    else
        fail "neither sha256sum nor shasum is installed: the download cannot be checked"
    fi
}

version=${HOOKCLI_VERSION:-latest}
version=${version#v}
repo=${HOOKCLI_REPO:-hookcli/hookcli}
base=${HOOKCLI_BASE_URL:-https://github.com/$repo/releases}
dir=${HOOKCLI_INSTALL_DIR:-$HOME/.local/bin}
triple=$(target)
case "$triple" in
    *windows*) archive="hookcli-$triple.zip" binary=hookcli.exe ;;
    *) archive="hookcli-$triple.tar.gz" binary=hookcli ;;
esac
if [ "$version" = latest ]; then
    url="$base/latest/download/$archive"
else
    url="$base/download/v$version/$archive"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
download "$url" "$tmp/$archive" || status=$?
[ "$status" -eq 3 ] && fail "no release asset $url (version $version, target $triple)" 3
[ "$status" -ne 0 ] && fail "cannot download $url"
status=0
download "$url.sha256" "$tmp/$archive.sha256" || status=$?
[ "$status" -ne 0 ] && fail "cannot download $url.sha256: the archive cannot be checked"

expected=$(cut -d ' ' -f 1 <"$tmp/$archive.sha256" | tr -d '\r\n')
actual=$(sha256 "$tmp/$archive")
[ "$expected" = "$actual" ] \
    || fail "$archive has SHA-256 $actual, but its .sha256 says $expected: not installed"

mkdir -p "$tmp/unpacked"
case "$archive" in
    *.zip) unzip -q "$tmp/$archive" -d "$tmp/unpacked" ;;
    *) tar -xzf "$tmp/$archive" -C "$tmp/unpacked" ;;
esac || fail "cannot unpack $archive"
[ -f "$tmp/unpacked/$binary" ] || fail "$archive holds no $binary"

mkdir -p "$dir" || fail "cannot make $dir"
# Copied beside the old binary, then renamed over it: a running hookcli is not cut short.
cp "$tmp/unpacked/$binary" "$dir/.$binary.new" && chmod 755 "$dir/.$binary.new" \
    && mv -f "$dir/.$binary.new" "$dir/$binary" \
    || fail "cannot write $dir/$binary"

echo "installed hookcli $version ($triple) as $dir/$binary"
case ":$PATH:" in
    *":$dir:"*) ;;
    *) echo "note: $dir is not on PATH; add it, or run $dir/$binary" ;;
esac
