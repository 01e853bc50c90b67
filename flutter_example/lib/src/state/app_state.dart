// The app's state: the services over one data directory, the chat, the models screen's
// downloads, the history and settings, and the app-wide actions (rate an answer, switch
// model, go offline, clear data). Handed down the tree by AppScope.

import 'package:flutter/foundation.dart';
import 'package:vazhi_example/src/services/assistant_service.dart';
import 'package:vazhi_example/src/services/feedback_service.dart';
import 'package:vazhi_example/src/services/knowledge_service.dart';
import 'package:vazhi_example/src/services/model_service.dart';
import 'package:vazhi_example/src/services/settings_store.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/chat_controller.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';
import 'package:vazhi_example/src/state/history_store.dart';
import 'package:vazhi_example/src/state/models_controller.dart';

/// The bottom navigation's tabs.
enum HomeTab {
  /// Questions and answers.
  chat,

  /// Knowledge-pack search and lookup.
  search,

  /// Model downloads.
  models,

  /// Settings and about.
  settings,
}

/// Thrown by [AppState.rate] when ratings cannot be saved (no feedback store is open).
class FeedbackUnavailable implements Exception {
  /// The exception.
  const FeedbackUnavailable();
}

/// Everything the screens share.
class AppState extends ChangeNotifier {
  /// State over the given services. [openFreshFeedback] starts a new feedback store after its
  /// key was lost ([feedbackKeyLost]); [startupError] is why the installed model did not load.
  AppState({
    required this.dataDir,
    required this.assistant,
    required this.models,
    required this.knowledge,
    required FeedbackService? feedback,
    required this.history,
    required this.settings,
    this.openFreshFeedback,
    this.feedbackKeyLost = false,
    this.startupError,
  }) : _feedback = feedback {
    chat = ChatController(assistant: assistant, history: history);
    downloads = ModelsController(models);
  }

  /// The data directory (models, knowledge.db, feedback.db, history.json, settings.json).
  final String dataDir;

  /// The assistant.
  final AssistantService assistant;

  /// The model catalog and downloads.
  final ModelService models;

  /// The knowledge packs.
  final KnowledgeService knowledge;

  /// Past conversations.
  final HistoryStore history;

  /// The app's settings.
  final SettingsStore settings;

  /// Opens a new, empty feedback store (the unreadable one is set aside).
  final Future<FeedbackService> Function()? openFreshFeedback;

  /// The chat.
  late final ChatController chat;

  /// The models screen's state.
  late final ModelsController downloads;

  FeedbackService? _feedback;
  Map<String, String>? _packVersions;
  HomeTab _tab = HomeTab.chat;

  /// The feedback store key is gone: the user is asked before a new store is started.
  bool feedbackKeyLost;

  /// Why the installed model did not load at start (shown once), if it did not.
  Object? startupError;

  /// The encrypted feedback store, if one is open.
  FeedbackService? get feedback => _feedback;

  /// The tab shown.
  HomeTab get tab => _tab;

  /// Shows [tab].
  void showTab(HomeTab tab) {
    if (_tab == tab) return;
    _tab = tab;
    notifyListeners();
  }

  /// Records [rating] (and [correction]) of [turn] in the encrypted feedback store.
  Future<void> rate(ChatTurn turn, Rating rating, {String? correction}) async {
    final store = _feedback;
    if (store == null) throw const FeedbackUnavailable();
    final fromModel = turn.text.isNotEmpty;
    final trimmed = correction?.trim();
    await store.record(FeedbackInput(
      question: turn.question,
      route: turn.route ?? 'unknown',
      answer: _clip(turn.text.isNotEmpty ? turn.text : _cardsText(turn)),
      cardIds: [for (final card in turn.cards.take(64)) '${card.pack}/${card.id}'],
      rating: rating,
      correction: trimmed == null || trimmed.isEmpty ? null : _clip(trimmed),
      modelId: fromModel ? assistant.modelId : null,
      modelSha256: fromModel ? assistant.modelSha256 : null,
      packVersions: await packVersions(),
    ));
    turn.rating = rating;
    chat.turnChanged(turn);
    debugPrint('feedback recorded, rating=${rating.name}, route=${turn.route}');
  }

  /// Installed packs, name → version (cached; recorded with each rating).
  Future<Map<String, String>> packVersions() async =>
      _packVersions ??= {for (final pack in await knowledge.packs()) pack.name: pack.version};

  /// Turns the offline switch on or off, and saves it.
  Future<void> setOffline(bool offline) async {
    await models.setOffline(offline);
    await settings.setOffline(offline);
    downloads.offlineChanged();
    notifyListeners();
  }

  /// Loads installed catalog model [modelId] (or none), replacing the current assistant's.
  Future<void> switchModel(String? modelId, {String? sha256}) async {
    chat.stop();
    await assistant.switchModel(modelId: modelId, sha256: sha256);
    notifyListeners();
  }

  /// Removes model [id] (unloading it first if it is the one loaded).
  Future<void> removeModel(ModelEntry entry) async {
    if (assistant.modelId == entry.model.id) await switchModel(null);
    await downloads.remove(entry);
  }

  /// Deletes every rating, the history, and with [removeModels] every downloaded model;
  /// returns how many ratings were deleted.
  Future<int> clearData({required bool removeModels}) async {
    chat.newConversation();
    final purged = await _feedback?.purgeAll() ?? 0;
    await history.clear();
    if (removeModels) {
      downloads.cancelAll();
      if (assistant.modelId != null) await switchModel(null);
      for (final entry in downloads.entries) {
        await downloads.remove(entry);
      }
    }
    debugPrint('data cleared, ratings=$purged, models removed=$removeModels');
    notifyListeners();
    return purged;
  }

  /// Writes the ratings, decrypted, to a new file in the data directory; returns its path and
  /// what was written.
  Future<(String, FeedbackExport)> exportFeedback() async {
    final store = _feedback;
    if (store == null) throw const FeedbackUnavailable();
    final path = '$dataDir/feedback-export-${DateTime.now().millisecondsSinceEpoch}.jsonl';
    final report = await store.exportTo(path);
    return (path, report);
  }

  /// After the user agreed: sets the unreadable feedback store aside and opens a new one.
  Future<void> startFreshFeedback() async {
    final open = openFreshFeedback;
    if (open == null) return;
    _feedback = await open();
    feedbackKeyLost = false;
    notifyListeners();
  }

  /// The user chose to keep ratings off for now.
  void dismissFeedbackKeyLoss() {
    feedbackKeyLost = false;
    notifyListeners();
  }

  /// The startup notice was shown.
  void clearStartupError() {
    startupError = null;
  }

  @override
  void dispose() {
    chat.dispose();
    downloads.dispose();
    super.dispose();
  }
}

String _cardsText(ChatTurn turn) =>
    [for (final card in turn.cards) '${card.title}\n${card.body}'].join('\n\n');

/// Keeps [text] under the feedback store's caps (64 KiB answers, 16 KiB corrections): 5,000
/// UTF-16 units are at most 15,000 bytes of UTF-8.
String _clip(String text) {
  const max = 5000;
  if (text.length <= max) return text;
  var end = max;
  // Never split a surrogate pair.
  final last = text.codeUnitAt(end - 1);
  if (last >= 0xD800 && last <= 0xDBFF) end--;
  return text.substring(0, end);
}
