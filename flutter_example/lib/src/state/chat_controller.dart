// The current conversation: asks the assistant, folds each answer's AskEvents into its
// ChatTurn as they arrive, stops an answer, and saves finished turns to the history.
//
// LOGGING: never log user text (questions, answers, corrections). debugPrint only non-user
// events: routes, counts, error codes.

import 'dart:async';

import 'package:flutter/foundation.dart';
import 'package:vazhi_example/src/services/assistant_service.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';
import 'package:vazhi_example/src/state/history_store.dart';

/// The conversation on the chat screen.
class ChatController extends ChangeNotifier {
  /// A controller asking [assistant] and saving to [history].
  ChatController({required AssistantService assistant, required HistoryStore history})
      : _assistant = assistant,
        _history = history;

  final AssistantService _assistant;
  final HistoryStore _history;
  final List<ChatTurn> _turns = [];
  String _conversationId = _newId();
  DateTime _startedAt = DateTime.now();
  AnswerHandle? _handle;
  StreamSubscription<AskEvent>? _subscription;

  /// The turns so far, oldest first.
  List<ChatTurn> get turns => List.unmodifiable(_turns);

  /// Whether an answer is streaming (the stop button shows).
  bool get isAnswering => _handle != null;

  /// Asks [question]; ignored while another answer streams or when blank.
  void send(String question) {
    final text = question.trim();
    if (text.isEmpty || isAnswering) return;
    if (_turns.isEmpty) _startedAt = DateTime.now();
    final turn = ChatTurn(question: text);
    _turns.add(turn);
    final handle = _assistant.ask(text);
    _handle = handle;
    _subscription = handle.events.listen(
      (event) => _onEvent(turn, event),
      onError: (Object error, StackTrace _) => _onError(turn, error),
      onDone: () => _onDone(turn),
    );
    notifyListeners();
  }

  /// Stops the answer streaming now (it ends with `done`, finish `cancelled`).
  void stop() => _handle?.cancel();

  /// Starts a new conversation (the current one is already in the history).
  void newConversation() {
    _handle?.cancel();
    unawaited(_subscription?.cancel());
    _handle = null;
    _subscription = null;
    _turns.clear();
    _conversationId = _newId();
    _startedAt = DateTime.now();
    _assistant.newConversation();
    notifyListeners();
  }

  /// [turn] changed outside the stream (e.g. rated): saves and redraws.
  void turnChanged(ChatTurn turn) {
    _save();
    notifyListeners();
  }

  void _onEvent(ChatTurn turn, AskEvent event) {
    switch (event.kind) {
      case AskEventKind.routed:
        turn
          ..route = event.route
          ..phase = AnswerPhase.streaming;
      case AskEventKind.card:
        final card = event.card;
        if (card != null) turn.cards.add(card);
        turn.phase = AnswerPhase.streaming;
      case AskEventKind.token:
        final text = event.text ?? '';
        turn
          ..text += event.unsupported ? _markUnsupported(text) : text
          ..phase = AnswerPhase.streaming;
      case AskEventKind.reasoning:
      case AskEventKind.toolCall:
        // This app offers no tools and keeps reasoning hidden: neither event comes.
        break;
      case AskEventKind.done:
        final summary = event.summary;
        if (summary != null) turn.applySummary(summary);
        turn.phase = AnswerPhase.done;
        debugPrint(
          'answer finished, route=${turn.route}, cards=${turn.cards.length}, '
          'tokens=${turn.generatedTokens}, finish=${turn.finish}, '
          'modelUnavailable=${turn.modelUnavailable}',
        );
    }
    notifyListeners();
  }

  /// [sentence] with a mark after it: the fact guard found a number, name or quote in it
  /// that neither the question nor the cards hold.
  static String _markUnsupported(String sentence) {
    final body = sentence.trimRight();
    return '$body ⚠${sentence.substring(body.length)}';
  }

  void _onError(ChatTurn turn, Object error) {
    turn
      ..phase = AnswerPhase.failed
      ..errorCode = error is VazhiException ? error.code : null;
    // The code only: a VazhiException's detail has no user text, but other errors might.
    debugPrint('answer failed, code=${turn.errorCode?.name ?? error.runtimeType}');
    notifyListeners();
  }

  void _onDone(ChatTurn turn) {
    // A stream that closed without `done` or an error (it should not happen) ends the turn.
    if (!turn.isFinished) turn.phase = AnswerPhase.done;
    _handle = null;
    _subscription = null;
    _save();
    notifyListeners();
  }

  void _save() {
    final finished = _turns.where((t) => t.isFinished).toList();
    if (finished.isEmpty) return;
    unawaited(_history.save(SavedConversation(
      id: _conversationId,
      startedAt: _startedAt,
      turns: finished,
    )));
  }

  @override
  void dispose() {
    _handle?.cancel();
    unawaited(_subscription?.cancel());
    super.dispose();
  }
}

String _newId() => DateTime.now().microsecondsSinceEpoch.toRadixString(36);
