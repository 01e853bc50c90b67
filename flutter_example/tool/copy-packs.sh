#!/bin/sh
# Copies the repository's knowledge packs (assets/packs/<name>/) into flutter_example/assets/packs/,
# where pubspec.yaml bundles them as Flutter assets. Run it once before `flutter run` or
# `flutter test integration_test`, and again when a pack changes. The packs and files copied must
# match AssetPacks.files in lib/src/services/asset_packs.dart.
#
#   tool/copy-packs.sh            # copy (works everywhere, also on Windows checkouts)
#   tool/copy-packs.sh --symlink  # link each pack directory instead (edits show up at once)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "$here/../assets/packs" && pwd)
dest="$here/assets/packs"
mode=${1:-copy}
case "$mode" in
  copy | --symlink) ;;
  *) echo "usage: tool/copy-packs.sh [--symlink]" >&2; exit 2 ;;
esac

mkdir -p "$dest"
for pack in thirukkural helplines; do
  if [ ! -f "$src/$pack/pack.toml" ] || [ ! -f "$src/$pack/records.jsonl" ]; then
    echo "copy-packs: $src/$pack is not a knowledge pack (pack.toml, records.jsonl)" >&2
    exit 1
  fi
  rm -rf "$dest/$pack"
  case "$mode" in
    --symlink) ln -s "$src/$pack" "$dest/$pack" ;;
    copy) mkdir -p "$dest/$pack" && cp "$src/$pack/pack.toml" "$src/$pack/records.jsonl" "$dest/$pack/" ;;
  esac
  echo "copy-packs: $pack -> $dest/$pack"
done
