#!/usr/bin/env bash
# Builds the operator's OCI image without a Docker daemon: what the Dockerfile
# builds (same entrypoint, user, labels and files), from a binary built here.
#
#   bash scripts/build-image.sh BINARY VERSION OUTDIR
#
# writes OUTDIR/orgaccess-image-VERSION.tar (a tarball `docker load`,
# `kind load image-archive` and `k3d image import` read; `crane push` sends it to
# a registry) and OUTDIR/orgaccess-image-VERSION.oci/ (an OCI image layout), both
# of the image `orgaccess:VERSION`, for linux/amd64.
#
# The root filesystem is one layer: the binary at /usr/local/bin/orgaccess, the
# shared libraries it links (glibc and libgcc, from this machine's Debian, as
# in distroless/cc) with their copyright files, /etc/passwd and /etc/group
# naming `nonroot` (65532), the CA certificates, and /tmp. No shell. The image
# runs as 65532:65532; files are owned by root and nothing needs writing, so it
# runs with a read-only root filesystem.
#
# scripts/oci-from-layer.sh assembles it with crane (go-containerregistry,
# tools/build-crane.sh), through a registry it serves on loopback meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[[ $# -eq 3 ]] || { echo "usage: $0 BINARY VERSION OUTDIR" >&2; exit 2; }
binary=$1 version=$2 out=$3
[[ -x "$binary" ]] || { echo "error: $binary is not an executable" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The labels, entrypoint and user of the Dockerfile's final stage (tests/release.rs
# checks the built image against the Dockerfile).
labels=(
  "org.opencontainers.image.title=orgaccess"
  "org.opencontainers.image.description=Kubernetes operator for an organization's member access: CRDs, admission webhook, controller, decision service"
  "org.opencontainers.image.licenses=Apache-2.0"
  "org.opencontainers.image.version=$version"
)

echo "image: root filesystem" >&2
rootfs="$work/rootfs"
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/orgaccess"
install -D -m 0644 LICENSE "$rootfs/usr/share/doc/orgaccess/LICENSE"
# The shared libraries the binary links, at the paths the loader looks them up,
# and the Debian copyright file of each package they come from.
ldd "$binary" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | sort -u | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1 || true)
  [[ -z "$pkg" ]] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1 || true)
  if [[ -n "$pkg" && -f "/usr/share/doc/$pkg/copyright" ]]; then
    install -D -m 0644 "/usr/share/doc/$pkg/copyright" "$rootfs/usr/share/doc/$pkg/copyright"
  fi
done
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
chmod 0644 "$rootfs"/etc/passwd "$rootfs"/etc/group "$rootfs"/etc/nsswitch.conf
# Reproducible: sorted, owned by root, dated at the last commit.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$rootfs" -cf "$work/layer.tar" .
echo "image: layer $(du -h "$work/layer.tar" | cut -f1)" >&2

label_args=()
for l in "${labels[@]}"; do label_args+=(--label "$l"); done
rm -rf "$out/orgaccess-image-$version.oci" "$out/orgaccess-image-$version.tar"
digest=$(OCI_LAYOUT="$out/orgaccess-image-$version.oci" bash scripts/oci-from-layer.sh "$work/layer.tar" \
  "${ORGACCESS_IMAGE_NAME:-orgaccess}:$version" "$out/orgaccess-image-$version.tar" \
  --entrypoint /usr/local/bin/orgaccess --user 65532:65532 --workdir / \
  --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  "${label_args[@]}")
echo "image: ${ORGACCESS_IMAGE_NAME:-orgaccess}:$version $digest" >&2
manifest=$(tar -xOf "$out/orgaccess-image-$version.tar" manifest.json)
config=$(sed -n 's/.*"Config":"\([^"]*\)".*/\1/p' <<<"$manifest")
tar -xOf "$out/orgaccess-image-$version.tar" "$config" >"$out/orgaccess-image-$version.config.json"
echo "$out/orgaccess-image-$version.tar"
