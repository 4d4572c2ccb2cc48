#!/usr/bin/env bash
# Makes a one-layer linux/amd64 image from a layer tarball, without a Docker
# daemon: crane (tools/build-crane.sh) appends the layer to an empty OCI base
# and sets the config through a registry it serves on loopback for the
# duration, then writes the image as a tarball tagged NAME (what `docker load`,
# `ctr images import`, kind and k3d read) and, with OCI_LAYOUT set, as an OCI
# image layout.
#
#   bash scripts/oci-from-layer.sh LAYER.tar NAME OUT.tar [crane mutate flags...]
#
# e.g. --entrypoint /pause --user 65535:65535. Prints the image's digest.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 3 ]] || { echo "usage: $0 LAYER.tar NAME OUT.tar [crane mutate flags...]" >&2; exit 2; }
layer=$1 name=$2 out=$3; shift 3
crane="$(bash tools/build-crane.sh 2>/dev/null | tail -1)/crane"
work=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-oci.XXXXXX")
registry_pid=""
cleanup() {
  if [[ -n "$registry_pid" ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$crane" registry serve --address 127.0.0.1:0 >"$work/registry.log" 2>&1 &
registry_pid=$!
address=""
for _ in $(seq 1 100); do
  address=$(sed -n 's/.*serving on port \([0-9]*\).*/127.0.0.1:\1/p' "$work/registry.log" | head -1)
  [[ -n "$address" ]] && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$address" ]] || { cat "$work/registry.log" >&2; echo "error: crane's registry did not start" >&2; exit 1; }
ref="$address/image:latest"
"$crane" append --insecure --oci-empty-base --platform linux/amd64 -f "$layer" -t "$ref" >/dev/null 2>&1
digest=$("$crane" mutate --insecure "$ref" -t "$ref" --set-platform linux/amd64 "$@" 2>/dev/null)
"$crane" pull --insecure --format tarball "$ref" "$work/image.tar" 2>/dev/null
if [[ -n "${OCI_LAYOUT:-}" ]]; then
  rm -rf "$OCI_LAYOUT"
  "$crane" pull --insecure --format oci "$ref" "$OCI_LAYOUT" 2>/dev/null
fi
# The tarball's tag is the loopback registry's: name it NAME instead.
python3 - "$work/image.tar" "$out" "$name" <<'PY'
import io, json, sys, tarfile
src, dst, name = sys.argv[1:]
with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
    for member in tin.getmembers():
        data = tin.extractfile(member) if member.isfile() else None
        if member.name == "manifest.json":
            manifest = json.load(data)
            for entry in manifest:
                entry["RepoTags"] = [name]
            body = json.dumps(manifest, separators=(",", ":")).encode()
            member.size = len(body)
            data = io.BytesIO(body)
        tout.addfile(member, data)
PY
echo "${digest##*@}"
