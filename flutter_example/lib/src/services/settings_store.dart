// The app's own settings (today: the offline switch), kept as settings.json in the data
// directory. No user text is stored here.

import 'dart:convert';
import 'dart:io';

import 'package:flutter/foundation.dart';

/// Settings persisted as a small JSON file (or only in memory, for tests).
class SettingsStore {
  /// Settings kept in [file]; call [load] before reading them.
  SettingsStore({required File this.file});

  /// Settings kept only in memory.
  SettingsStore.memory() : file = null;

  /// Where the settings are kept; `null` in memory.
  final File? file;

  bool _offline = false;

  /// Whether downloads are switched off.
  bool get offline => _offline;

  /// Reads the file; a missing or damaged file gives the defaults.
  Future<void> load() async {
    final file = this.file;
    if (file == null || !await file.exists()) return;
    try {
      final json = jsonDecode(await file.readAsString());
      if (json is Map<String, dynamic>) {
        _offline = json['offline'] == true;
      }
    } on FormatException {
      debugPrint('settings.json unreadable; using the defaults');
    }
  }

  /// Sets and saves the offline switch.
  Future<void> setOffline(bool offline) async {
    _offline = offline;
    await _save();
  }

  Future<void> _save() async {
    final file = this.file;
    if (file == null) return;
    final partial = File('${file.path}.partial');
    await partial.writeAsString(jsonEncode({'offline': _offline}), flush: true);
    await partial.rename(file.path);
  }
}
