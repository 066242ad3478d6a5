#!/usr/bin/env bash
# Validates deploy/k8s/ offline against the Kubernetes JSON schemas bundled in the
# kubernetes-validate package (PyPI), installed once into .data/venv-k8s.
# Custom resources (the CloudNativePG Cluster) and the kustomization are only parsed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.data/venv-k8s
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian splits venv support out of python3.
        apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi
mapfile -t files < <(find deploy/k8s -name '*.yaml' | sort)
"$venv/bin/kubernetes-validate" --strict --quiet "${files[@]}"
echo "k8s manifests: ${#files[@]} files valid (Kubernetes 1.37 schemas, strict)"
