// Fakes of the service interfaces, so widget tests run without the native library. Events
// are the generated record classes (plain Dart), fed through StreamControllers the test drives.

import 'dart:async';

import 'package:vazhi_example/src/services/assistant_service.dart';
import 'package:vazhi_example/src/services/feedback_service.dart';
import 'package:vazhi_example/src/services/knowledge_service.dart';
import 'package:vazhi_example/src/services/model_service.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';

/// Kural 1, as the thirukkural pack's card.
const kural1 = KnowledgeCard(
  pack: 'thirukkural',
  packTitle: 'Thirukkural (திருக்குறள்)',
  packVersion: '1.0.0',
  licence: 'Public domain (test licence text)',
  id: 'kural-1',
  title: 'Kural 1 · கடவுள் வாழ்த்து',
  body: 'அகர முதல எழுத்தெல்லாம் ஆதி\nபகவன் முதற்றே உலகு.',
  lang: 'ta-en',
  tags: ['kural', 'chapter:1'],
  source: 'Thirukkural; English translation G. U. Pope (1886)',
);

/// An assistant whose answers are streams the test writes to.
class FakeAssistant implements AssistantService {
  /// One controller per question asked, in order.
  final List<StreamController<AskEvent>> answers = [];

  /// Questions asked, in order.
  final List<String> questions = [];

  /// How many times an answer was cancelled.
  int cancels = 0;

  @override
  bool hasModel = false;

  @override
  String? modelId;

  @override
  String? modelSha256;

  @override
  String get sdkVersion => '0.0.0-test';

  /// The latest answer's controller.
  StreamController<AskEvent> get current => answers.last;

  @override
  AnswerHandle ask(String question) {
    questions.add(question);
    final controller = StreamController<AskEvent>();
    answers.add(controller);
    return AnswerHandle(events: controller.stream, onCancel: () => cancels++);
  }

  @override
  void newConversation() {}

  @override
  Future<void> switchModel({String? modelId, String? sha256}) async {
    this.modelId = modelId;
    modelSha256 = sha256;
    hasModel = modelId != null;
  }

  @override
  Future<bool> onMemoryPressure(MemoryPressure level) async => false;

  @override
  Future<void> reload() async {}
}

/// Events of one answer, built from the generated classes.
class Answers {
  /// `routed`.
  static AskEvent routed(String route) =>
      AskEvent(kind: AskEventKind.routed, route: route, reason: 'test', unsupported: false);

  /// `card`.
  static AskEvent card(KnowledgeCard card) =>
      AskEvent(kind: AskEventKind.card, card: card, unsupported: false);

  /// `token`; [unsupported]: the fact guard marked it.
  static AskEvent token(String text, {bool unsupported = false}) =>
      AskEvent(kind: AskEventKind.token, text: text, unsupported: unsupported);

  /// `done`.
  static AskEvent done({
    required String route,
    int cards = 0,
    String text = '',
    bool modelUnavailable = false,
  }) =>
      AskEvent(
        kind: AskEventKind.done,
        unsupported: false,
        summary: AnswerSummary(
          route: route,
          cards: cards,
          text: text,
          modelUnavailable: modelUnavailable,
          finish: text.isEmpty ? null : 'end_of_text',
          generatedTokens: text.isEmpty ? 0 : 3,
          toolCalls: 0,
          unsupportedSentences: 0,
        ),
      );
}

/// A model manager whose downloads are streams the test writes to.
class FakeModels implements ModelService {
  /// A catalog of [models].
  FakeModels(this.models);

  /// The catalog.
  final List<CatalogModel> models;

  /// Status per model id (absent when missing).
  final Map<String, ModelStatus> statuses = {};

  /// Ids that do not fit, with why.
  final Map<String, String> tooBig = {};

  /// One controller per download started.
  final List<StreamController<DownloadEvent>> downloads = [];

  /// Calls, in order: `download:<id>`, `pause`, `cancel`, `verify:<id>`, `remove:<id>`, …
  final List<String> calls = [];

  /// Every value passed to [setOffline].
  final List<bool> offlineCalls = [];

  @override
  bool isOffline = false;

  @override
  List<CatalogModel> catalog() => models;

  @override
  Future<ModelStatus> status(String id) async =>
      statuses[id] ?? const ModelStatus(state: ModelState.absent);

  @override
  Future<void> checkFits(String id) async {
    final reason = tooBig[id];
    if (reason != null) {
      throw VazhiException(code: VazhiErrorCode.insufficientResources, detail: reason);
    }
  }

  @override
  Future<void> setOffline(bool offline) async {
    offlineCalls.add(offline);
    isOffline = offline;
  }

  @override
  DownloadHandle download(String id) {
    calls.add('download:$id');
    final controller = StreamController<DownloadEvent>();
    downloads.add(controller);
    return DownloadHandle(
      events: controller.stream,
      onPause: () => calls.add('pause'),
      onCancel: () => calls.add('cancel'),
    );
  }

  @override
  Future<bool> discardPartial(String id) async {
    calls.add('discard:$id');
    statuses.remove(id);
    return true;
  }

  @override
  Future<bool> remove(String id) async {
    calls.add('remove:$id');
    return statuses.remove(id) != null;
  }

  @override
  Future<InstalledModel> verify(String id) async {
    calls.add('verify:$id');
    final installed = statuses[id]?.installed;
    if (installed == null) {
      throw const VazhiException(code: VazhiErrorCode.modelNotFound, detail: 'not installed');
    }
    return installed;
  }
}

/// A knowledge base with the packs and cards the test gives it.
class FakeKnowledge implements KnowledgeService {
  /// Installed packs.
  final List<PackInfo> installed = [
    const PackInfo(
      name: 'thirukkural',
      title: 'Thirukkural (திருக்குறள்)',
      version: '1.0.0',
      licence: 'Public domain (test licence text)',
      source: 'libkural 1.0.1',
      records: 1466,
    ),
  ];

  @override
  Future<List<SearchHit>> search(String query, {int limit = 20, String? pack}) async =>
      [const SearchHit(card: kural1, score: 1, snippet: '[அகர] முதல எழுத்தெல்லாம்')];

  @override
  Future<KnowledgeCard?> lookup({required String pack, required String key}) async =>
      pack == 'thirukkural' && key == '1' ? kural1 : null;

  @override
  Future<List<PackInfo>> packs() async => installed;
}

/// A feedback store that keeps what it was given.
class FakeFeedback implements FeedbackService {
  /// Every record, in order.
  final List<FeedbackInput> recorded = [];

  @override
  Future<String> record(FeedbackInput feedback) async {
    recorded.add(feedback);
    return 'record-${recorded.length}';
  }

  @override
  Future<int> count() async => recorded.length;

  @override
  Future<FeedbackExport> exportTo(String path) async =>
      FeedbackExport(exported: recorded.length, unreadable: 0);

  @override
  Future<int> purgeAll() async {
    final n = recorded.length;
    recorded.clear();
    return n;
  }
}
