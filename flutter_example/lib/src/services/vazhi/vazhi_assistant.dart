// AssistantService over the native VazhiApp: a multi-turn Conversation per chat, answers as
// Dart streams, and switching models by reopening the app (the old model unloaded first).

import 'package:flutter/foundation.dart';
import 'package:vazhi_example/src/rust/api.dart' as api;
import 'package:vazhi_example/src/rust/api/assistant.dart';
import 'package:vazhi_example/src/rust/api/error.dart';
import 'package:vazhi_example/src/rust/api/records.dart';
import 'package:vazhi_example/src/services/assistant_service.dart';

/// The app's [AssistantService]: one [VazhiApp] over the data directory.
class VazhiAssistant implements AssistantService {
  VazhiAssistant._(this._app, this._config, this._sha256);

  /// Opens the data directory, imports `config.packDirs` and loads `config.modelId` if set
  /// ([modelSha256] is that model's verified hash, recorded with feedback).
  static Future<VazhiAssistant> open(
    VazhiAppConfig config, {
    String? modelSha256,
  }) async {
    final app = await VazhiApp.open(config: config);
    return VazhiAssistant._(app, config, modelSha256);
  }

  VazhiApp _app;
  VazhiAppConfig _config;
  String? _sha256;
  Conversation? _conversation;

  @override
  bool get hasModel => _app.hasModel();

  @override
  String? get modelId => hasModel ? _config.modelId : null;

  @override
  String? get modelSha256 => hasModel ? _sha256 : null;

  @override
  String get sdkVersion => api.sdkVersion();

  @override
  AnswerHandle ask(String question) {
    final task = AnswerTask();
    final conversation = _conversation ??= _app.conversation();
    // The stream starts when the chat listens; cancelling the subscription closes the Dart
    // stream, which stops the answer on the Rust side too.
    Stream<AskEvent> events() async* {
      yield* await conversation.ask(
        question: question,
        options: const AskOptions(),
        task: task,
      );
    }

    return AnswerHandle(events: events(), onCancel: task.cancel);
  }

  @override
  void newConversation() {
    _conversation?.dispose();
    _conversation = null;
  }

  @override
  Future<void> switchModel({String? modelId, String? sha256}) async {
    final old = _app;
    final config = _withModel(_config, modelId);
    // Free the old model's memory before the new one loads (answers in flight end with
    // `modelUnloaded`).
    await old.unload();
    final VazhiApp app;
    try {
      app = await VazhiApp.open(config: config);
    } on Object catch (error) {
      debugPrint('model switch failed (${_code(error)}); keeping the previous assistant');
      try {
        await old.reload();
      } on Object catch (reloadError) {
        debugPrint('previous model not reloaded (${_code(reloadError)})');
      }
      rethrow;
    }
    newConversation();
    _app = app;
    _config = config;
    _sha256 = modelId == null ? null : sha256;
    old.dispose();
    debugPrint('assistant reopened, model loaded=${app.hasModel()}');
  }

  @override
  Future<bool> onMemoryPressure(MemoryPressure level) =>
      _app.onMemoryPressure(level: level);

  @override
  Future<void> reload() => _app.reload();
}

/// [config] with [modelId] as its model (the generated config has no copyWith).
VazhiAppConfig _withModel(VazhiAppConfig config, String? modelId) => VazhiAppConfig(
      dataDir: config.dataDir,
      modelPath: config.modelPath,
      modelId: modelId,
      catalogJson: config.catalogJson,
      packDirs: config.packDirs,
      rulesToml: config.rulesToml,
      threads: config.threads,
      contextTokens: config.contextTokens,
      memoryBudgetMb: config.memoryBudgetMb,
      maxTokens: config.maxTokens,
      systemPrompt: config.systemPrompt,
      unloadAt: config.unloadAt,
      chatTemplate: config.chatTemplate,
    );

String _code(Object error) =>
    error is VazhiException ? error.code.name : error.runtimeType.toString();
