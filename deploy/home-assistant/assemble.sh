#!/bin/sh
# Put the add-on's build folder together: this folder plus the Voxhelm sources it installs
# (pyproject.toml, uv.lock, README.md, src/). Copy the result to the add-ons folder of Home
# Assistant (/addons/voxhelm over the Samba or SSH add-on), as DOCS.md shows.
#
#   sh deploy/home-assistant/assemble.sh DEST
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dest=${1:?usage: assemble.sh DEST}

mkdir -p "$dest"
cp -R "$here/." "$dest/"
rm -f "$dest/assemble.sh"
cp "$repo/pyproject.toml" "$repo/uv.lock" "$repo/README.md" "$dest/"
rm -rf "$dest/src"
cp -R "$repo/src" "$dest/src"
find "$dest/src" -name __pycache__ -type d -prune -exec rm -rf {} +
echo "Voxhelm add-on assembled in $dest"
