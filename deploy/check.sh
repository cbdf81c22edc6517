#!/usr/bin/env bash
# Offline checks of everything under deploy/ that CI runs: each kustomize
# tree renders and validates strictly against the Kubernetes API schemas,
# and the compose file is valid. No cluster, engine or registry is needed.
#
#   bash deploy/check.sh
#
# Installs what is missing: kubernetes-validate (pip), docker-compose (apt).
# kubectl must be on PATH (it is on the development machines).
# Environment: K8S_VERSION (default 1.32.0), the schema version to validate against.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

k8s_version="${K8S_VERSION:-1.32.0}"
failures=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

pass() { echo "check: ok    $1"; }
fail() {
  echo "check: FAIL  $1"
  sed 's/^/    /' "$log" | tail -n 40
  failures=$((failures + 1))
}

# Tools.
if ! command -v kubectl >/dev/null; then
  echo "check: FAIL  kubectl is not on PATH (it renders the kustomize trees)"
  exit 1
fi
if ! command -v kubernetes-validate >/dev/null; then
  echo "check: installing kubernetes-validate (pip)"
  python3 -m pip install --quiet kubernetes-validate >"$log" 2>&1 || {
    fail "pip install kubernetes-validate"
    exit 1
  }
fi
if ! command -v docker-compose >/dev/null; then
  echo "check: installing docker-compose (apt)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; } >"$log" 2>&1 || {
    fail "apt-get install docker-compose"
    exit 1
  }
fi

# The schema version must be one the installed package ships, or every tree
# would fail for a reason that says nothing about the manifests.
probe_doc=$'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n'
if kubernetes-validate --strict --quiet -k "$k8s_version" - <<<"$probe_doc" >"$log" 2>&1; then
  pass "kubernetes-validate $(kubernetes-validate --version 2>/dev/null | awk '{print $NF}') knows Kubernetes $k8s_version"
else
  fail "kubernetes-validate knows Kubernetes $k8s_version (set K8S_VERSION to one it ships)"
  exit 1
fi

# Kubernetes: base and every overlay.
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  name="kustomize $dir | kubernetes-validate --strict -k $k8s_version"
  if rendered=$(kubectl kustomize "$dir" 2>"$log"); then
    count=$(grep -c '^kind:' <<<"$rendered")
    if kubernetes-validate --strict --quiet -k "$k8s_version" - <<<"$rendered" >"$log" 2>&1; then
      pass "$name ($count resources)"
    else
      fail "$name"
    fi
  else
    fail "$name (kustomize failed)"
  fi
done

# Compose.
name="docker-compose -f deploy/compose.yaml config -q"
if docker-compose -f deploy/compose.yaml config -q >"$log" 2>&1; then
  pass "$name"
else
  fail "$name"
fi

# The scripts parse (and pass shellcheck where it is installed).
for script in deploy/*.sh; do
  if command -v shellcheck >/dev/null; then
    if shellcheck "$script" >"$log" 2>&1; then
      pass "shellcheck $script"
    else
      fail "shellcheck $script"
    fi
  elif bash -n "$script" 2>"$log"; then
    pass "bash -n $script"
  else
    fail "bash -n $script"
  fi
done

if [ "$failures" -gt 0 ]; then
  echo "check: $failures failed"
  exit 1
fi
echo "check: all passed"
