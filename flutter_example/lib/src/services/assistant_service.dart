// The assistant as the UI sees it. The app's implementation is VazhiAssistant (over the native
// VazhiApp); widget tests pass a fake, so the UI never needs the native library.

import 'package:vazhi_example/src/services/vazhi_types.dart';

/// One answer in flight: its events, and a way to stop it.
class AnswerHandle {
  /// Wraps [events]; [onCancel] stops the answer.
  AnswerHandle({required this.events, required void Function() onCancel})
      : _onCancel = onCancel;

  /// `routed`, then cards, then tokens, then `done`; a failure ends the stream with a
  /// [VazhiException] instead of `done`.
  final Stream<AskEvent> events;

  final void Function() _onCancel;

  /// Stops the answer within a token; the stream then ends with `done` (finish `cancelled`).
  /// Idempotent.
  void cancel() => _onCancel();
}

/// What the app needs from Vazhi's assistant.
abstract class AssistantService {
  /// Whether a model is loaded (without one, answers come from the knowledge packs only).
  bool get hasModel;

  /// The catalog id of the loaded model, if one is loaded.
  String? get modelId;

  /// The SHA-256 of the loaded model, if one is loaded and known.
  String? get modelSha256;

  /// The Vazhi SDK's version.
  String get sdkVersion;

  /// Asks [question] within the current conversation. A blank question fails the stream with
  /// `invalidInput`.
  AnswerHandle ask(String question);

  /// Forgets the conversation's earlier turns (for the model); the next question starts anew.
  void newConversation();

  /// Replaces the assistant with one that loads installed catalog model [modelId] (or no model
  /// when `null`). The old model is unloaded first, so both never sit in memory together.
  Future<void> switchModel({String? modelId, String? sha256});

  /// The OS asks for memory back; returns whether the model was unloaded.
  Future<bool> onMemoryPressure(MemoryPressure level);

  /// Loads the model again after memory pressure unloaded it (no-op if loaded or none).
  Future<void> reload();
}
