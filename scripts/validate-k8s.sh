#!/usr/bin/env bash
# Validates deploy/k8s/ offline against the Kubernetes JSON schemas bundled in the
# kubernetes-validate package (PyPI), installed once into .data/venv-k8s.
# Custom resources (the CloudNativePG Cluster) and the kustomization are only parsed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.data/venv-k8s
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian splits venv support out of python3 (and a fresh machine may lack python3).
        rm -rf "$venv"
        as_root() {
            if [[ $EUID -eq 0 ]]; then
                "$@"
            elif command -v sudo >/dev/null 2>&1; then
                sudo "$@"
            else
                echo "validate-k8s.sh: need root (or sudo) to install python3-venv" >&2
                exit 1
            fi
        }
        command -v apt-get >/dev/null 2>&1 || {
            echo "validate-k8s.sh: python3 -m venv does not work; install python3-venv (or your system's equivalent)" >&2
            exit 1
        }
        echo "validate-k8s.sh: installing python3-venv (Debian package) ..."
        log="$(mktemp /tmp/crm-k8s-apt.XXXXXX)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
            echo "validate-k8s.sh: warning: apt-get update failed; trying to install anyway" >&2
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            python3 python3-venv >>"$log" 2>&1; then
            tail -n 20 "$log" >&2
            echo "validate-k8s.sh: apt-get failed to install python3-venv (full log: $log)" >&2
            exit 1
        fi
        rm -f "$log"
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi
mapfile -t files < <(find deploy/k8s -name '*.yaml' | sort)
"$venv/bin/kubernetes-validate" --strict --quiet "${files[@]}"
echo "k8s manifests: ${#files[@]} files valid (Kubernetes 1.37 schemas, strict)"
