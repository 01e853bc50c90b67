// Copies the knowledge packs bundled as Flutter assets into the data directory, where
// VazhiApp imports them (a pack is a directory: pack.toml + records.jsonl). The file list is a
// const map, so no AssetManifest parsing is needed; it must match pubspec.yaml's `assets:` and
// tool/copy-packs.sh.

import 'dart:io';

import 'package:flutter/foundation.dart';
import 'package:flutter/services.dart';

/// The knowledge packs bundled with the app.
class AssetPacks {
  AssetPacks._();

  /// Where the packs are in the asset bundle.
  static const String assetRoot = 'assets/packs';

  /// Each bundled pack and its files.
  static const Map<String, List<String>> files = {
    'thirukkural': ['pack.toml', 'records.jsonl'],
    'helplines': ['pack.toml', 'records.jsonl'],
  };

  /// Copies each pack to `<dataDir>/packs/<name>/` when it is not there yet or its
  /// pack.toml changed (a new app version ships a new pack), and returns the pack directories
  /// for `VazhiAppConfig.packDirs`. Vazhi skips a pack version it already imported.
  static Future<List<String>> install(String dataDir, {AssetBundle? bundle}) async {
    final assets = bundle ?? rootBundle;
    final dirs = <String>[];
    for (final MapEntry(key: pack, value: names) in files.entries) {
      final dir = Directory('$dataDir/packs/$pack');
      final String manifest;
      try {
        manifest = await assets.loadString('$assetRoot/$pack/pack.toml', cache: false);
      } on FlutterError {
        throw StateError(
          'knowledge pack "$pack" is not in the app bundle: run tool/copy-packs.sh, then rebuild',
        );
      }
      final copied = File('${dir.path}/pack.toml');
      if (!await copied.exists() || await copied.readAsString() != manifest) {
        await _copy(assets, pack, names, dir);
      }
      dirs.add(dir.path);
    }
    return dirs;
  }

  static Future<void> _copy(
    AssetBundle assets,
    String pack,
    List<String> names,
    Directory dir,
  ) async {
    await dir.create(recursive: true);
    // pack.toml last: a copy cut short (the app killed) has an old or no pack.toml, so the
    // next start copies again.
    final ordered = [
      ...names.where((name) => name != 'pack.toml'),
      'pack.toml',
    ];
    for (final name in ordered) {
      final data = await assets.load('$assetRoot/$pack/$name');
      final partial = File('${dir.path}/$name.partial');
      await partial.writeAsBytes(
        data.buffer.asUint8List(data.offsetInBytes, data.lengthInBytes),
        flush: true,
      );
      await partial.rename('${dir.path}/$name');
    }
    debugPrint('knowledge pack copied from the app bundle: $pack');
  }
}
