// Opens everything over the app's data directory: the bundled knowledge packs copied out of
// the asset bundle, the settings, the model manager, the assistant (with the first installed
// catalog model, if any), the knowledge base, the encrypted feedback store and the history.

import 'dart:io';

import 'package:flutter/foundation.dart';
import 'package:path_provider/path_provider.dart';
import 'package:vazhi_example/src/rust/api/assistant.dart';
import 'package:vazhi_example/src/rust/api/error.dart';
import 'package:vazhi_example/src/rust/api/models.dart';
import 'package:vazhi_example/src/services/asset_packs.dart';
import 'package:vazhi_example/src/services/feedback_service.dart';
import 'package:vazhi_example/src/services/settings_store.dart';
import 'package:vazhi_example/src/services/vazhi/secure_keys.dart';
import 'package:vazhi_example/src/services/vazhi/vazhi_assistant.dart';
import 'package:vazhi_example/src/services/vazhi/vazhi_feedback.dart';
import 'package:vazhi_example/src/services/vazhi/vazhi_knowledge.dart';
import 'package:vazhi_example/src/services/vazhi/vazhi_models.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/state/history_store.dart';

/// The app's data directory: `<application support>/vazhi`.
Future<String> resolveDataDir() async {
  final support = await getApplicationSupportDirectory();
  final dir = Directory('${support.path}${Platform.pathSeparator}vazhi');
  await dir.create(recursive: true);
  return dir.path;
}

/// Opens the app over [dataDir] (default: [resolveDataDir]). `RustLib.init()` must have run.
Future<AppState> openApp({String? dataDir}) async {
  final dir = dataDir ?? await resolveDataDir();
  final packDirs = await AssetPacks.install(dir);

  final settings = SettingsStore(file: File('$dir/settings.json'));
  await settings.load();
  final history = HistoryStore(file: File('$dir/history.json'));
  await history.load();

  final models = await VazhiModels.open(
    ModelManagerConfig(dataDir: dir, offline: settings.offline),
  );
  final installed = await models.firstInstalled();

  final config = VazhiAppConfig(dataDir: dir, packDirs: packDirs, modelId: installed?.id);
  VazhiAssistant assistant;
  Object? startupError;
  try {
    assistant = await VazhiAssistant.open(config, modelSha256: installed?.sha256);
  } on VazhiException catch (error) {
    if (installed == null) rethrow;
    // The model did not load (out of memory, refused, …): answer from the packs, and say so.
    debugPrint('installed model not loaded at start, code=${error.code.name}');
    startupError = error;
    assistant = await VazhiAssistant.open(
      VazhiAppConfig(dataDir: dir, packDirs: packDirs),
    );
  }

  final knowledge = await VazhiKnowledge.open(dir);

  final keys = SecureKeys();
  Future<FeedbackService> openFeedback({required bool fresh}) =>
      VazhiFeedback.open(dataDir: dir, keys: keys, fresh: fresh);
  FeedbackService? feedback;
  var keyLost = false;
  try {
    feedback = await openFeedback(fresh: false);
  } on VazhiException catch (error) {
    // keyUnavailable: the key is gone (e.g. the app was restored to a new phone); nothing was
    // changed. The user is told, and asked before a new store is started (fresh: true).
    // Anything else (a damaged database): ratings stay off; the app works without them.
    keyLost = error.code == VazhiErrorCode.keyUnavailable;
    debugPrint('feedback store not opened, code=${error.code.name}');
  }

  debugPrint(
    'app opened, packs=${packDirs.length}, model loaded=${assistant.hasModel}, '
    'offline=${settings.offline}, feedback=${feedback != null}',
  );
  return AppState(
    dataDir: dir,
    assistant: assistant,
    models: models,
    knowledge: knowledge,
    feedback: feedback,
    history: history,
    settings: settings,
    openFreshFeedback: () => openFeedback(fresh: true),
    feedbackKeyLost: keyLost,
    startupError: startupError,
  );
}
