// One question and its answer, as the chat builds it from AskEvents and as history.json keeps
// it.

import 'package:vazhi_example/src/services/vazhi_types.dart';

/// Where an answer is.
enum AnswerPhase {
  /// Asked; nothing back yet.
  waiting,

  /// Routed; cards and tokens arriving.
  streaming,

  /// `done` arrived.
  done,

  /// The stream ended with an error.
  failed,
}

/// Where an answer's content came from (the source badge).
enum AnswerSource {
  /// Nothing yet.
  none,

  /// Knowledge cards only.
  knowledge,

  /// Model text only.
  model,

  /// Cards and model text (the `hybrid` route).
  both,
}

/// One question and its answer.
class ChatTurn {
  /// A turn asking [question].
  ChatTurn({required this.question, DateTime? askedAt})
      : askedAt = askedAt ?? DateTime.now();

  /// The question as asked.
  final String question;

  /// When it was asked.
  final DateTime askedAt;

  /// Where the answer is.
  AnswerPhase phase = AnswerPhase.waiting;

  /// The route (`lookup`, `search`, `hybrid`, `generate`), once routed.
  String? route;

  /// Knowledge cards, verbatim, in the order they came.
  final List<KnowledgeCard> cards = [];

  /// The model's text so far.
  String text = '';

  /// The route wanted the model, but none was loaded.
  bool modelUnavailable = false;

  /// Why the model stopped (`end_of_text`, `max_tokens`, `cancelled`, …), when it spoke.
  String? finish;

  /// Tokens the model wrote.
  int generatedTokens = 0;

  /// What failed, when [phase] is [AnswerPhase.failed] (`null`: not a Vazhi error).
  VazhiErrorCode? errorCode;

  /// The user's rating, once given.
  Rating? rating;

  /// Whether the answer is complete (done or failed).
  bool get isFinished => phase == AnswerPhase.done || phase == AnswerPhase.failed;

  /// Whether the user stopped it.
  bool get wasStopped => finish == 'cancelled';

  /// The badge: cards mean the knowledge base, model text means the model, both mean the
  /// `hybrid` route answered with the two.
  AnswerSource get source {
    final fromCards = cards.isNotEmpty;
    final fromModel = text.isNotEmpty;
    if (fromCards && fromModel) return AnswerSource.both;
    if (fromCards) return AnswerSource.knowledge;
    if (fromModel) return AnswerSource.model;
    return AnswerSource.none;
  }

  /// Takes the `done` event's summary.
  void applySummary(AnswerSummary summary) {
    route = summary.route;
    modelUnavailable = summary.modelUnavailable;
    finish = summary.finish;
    generatedTokens = summary.generatedTokens;
    if (summary.text.isNotEmpty) text = summary.text;
  }

  /// As stored in history.json.
  Map<String, Object?> toJson() => {
        'question': question,
        'askedAt': askedAt.millisecondsSinceEpoch,
        'phase': phase.name,
        'route': route,
        'cards': [for (final card in cards) _cardToJson(card)],
        'text': text,
        'modelUnavailable': modelUnavailable,
        'finish': finish,
        'generatedTokens': generatedTokens,
        'errorCode': errorCode?.name,
        'rating': rating?.name,
      };

  /// A turn read back from history.json (unknown or missing fields get defaults).
  static ChatTurn fromJson(Map<String, dynamic> json) {
    final turn = ChatTurn(
      question: json['question'] as String? ?? '',
      askedAt: DateTime.fromMillisecondsSinceEpoch(json['askedAt'] as int? ?? 0),
    );
    turn
      ..phase = _byName(AnswerPhase.values, json['phase']) ?? AnswerPhase.done
      ..route = json['route'] as String?
      ..text = json['text'] as String? ?? ''
      ..modelUnavailable = json['modelUnavailable'] == true
      ..finish = json['finish'] as String?
      ..generatedTokens = json['generatedTokens'] as int? ?? 0
      ..errorCode = _byName(VazhiErrorCode.values, json['errorCode'])
      ..rating = _byName(Rating.values, json['rating']);
    // An answer cut off by the app closing is shown as it was left.
    if (!turn.isFinished) turn.phase = AnswerPhase.done;
    final cards = json['cards'];
    if (cards is List) {
      for (final card in cards) {
        if (card is Map<String, dynamic>) turn.cards.add(_cardFromJson(card));
      }
    }
    return turn;
  }
}

T? _byName<T extends Enum>(List<T> values, Object? name) {
  for (final value in values) {
    if (value.name == name) return value;
  }
  return null;
}

Map<String, Object?> _cardToJson(KnowledgeCard card) => {
      'pack': card.pack,
      'packTitle': card.packTitle,
      'packVersion': card.packVersion,
      'licence': card.licence,
      'id': card.id,
      'title': card.title,
      'body': card.body,
      'lang': card.lang,
      'tags': card.tags,
      'source': card.source,
    };

KnowledgeCard _cardFromJson(Map<String, dynamic> json) {
  String field(String name) => json[name] as String? ?? '';
  final tags = json['tags'];
  return KnowledgeCard(
    pack: field('pack'),
    packTitle: field('packTitle'),
    packVersion: field('packVersion'),
    licence: field('licence'),
    id: field('id'),
    title: field('title'),
    body: field('body'),
    lang: field('lang'),
    tags: tags is List ? tags.whereType<String>().toList() : const <String>[],
    source: field('source'),
  );
}
