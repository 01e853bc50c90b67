// Past conversations, kept as history.json in the data directory.
//
// PRIVACY: history.json is stored UNENCRYPTED (plain JSON holding the user's questions and the
// answers) unless the team encrypts it (e.g. with a key from flutter_secure_storage, as the
// feedback store does). Settings → "Clear data" deletes it. Ratings and corrections do not go
// here: they go to Vazhi's encrypted feedback store.

import 'dart:convert';
import 'dart:io';

import 'package:flutter/foundation.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';

/// One past conversation.
class SavedConversation {
  /// A conversation [id] started at [startedAt] with [turns].
  SavedConversation({required this.id, required this.startedAt, required this.turns});

  /// Unique id.
  final String id;

  /// When its first question was asked.
  final DateTime startedAt;

  /// Its finished turns.
  final List<ChatTurn> turns;

  /// The first question (the history list's title).
  String get title => turns.isEmpty ? '' : turns.first.question;

  /// As stored in history.json.
  Map<String, Object?> toJson() => {
        'id': id,
        'startedAt': startedAt.millisecondsSinceEpoch,
        'turns': [for (final turn in turns) turn.toJson()],
      };

  /// Read back from history.json.
  static SavedConversation fromJson(Map<String, dynamic> json) {
    final turns = json['turns'];
    return SavedConversation(
      id: json['id'] as String? ?? '',
      startedAt: DateTime.fromMillisecondsSinceEpoch(json['startedAt'] as int? ?? 0),
      turns: [
        if (turns is List)
          for (final turn in turns)
            if (turn is Map<String, dynamic>) ChatTurn.fromJson(turn),
      ],
    );
  }
}

/// The list of past conversations, newest first, saved to a JSON file (or kept in memory).
class HistoryStore extends ChangeNotifier {
  /// History kept in [file]; call [load] first.
  HistoryStore({required File this.file});

  /// History kept only in memory (tests).
  HistoryStore.memory() : file = null;

  /// Where the history is kept; `null` in memory.
  final File? file;

  final List<SavedConversation> _conversations = [];
  Future<void> _writing = Future<void>.value();

  /// Past conversations, newest first.
  List<SavedConversation> get conversations => List.unmodifiable(_conversations);

  /// Reads the file; a missing or damaged file gives an empty history.
  Future<void> load() async {
    final file = this.file;
    if (file == null || !await file.exists()) return;
    try {
      final json = jsonDecode(await file.readAsString());
      _conversations.clear();
      if (json is List) {
        for (final item in json) {
          if (item is Map<String, dynamic>) {
            _conversations.add(SavedConversation.fromJson(item));
          }
        }
      }
      notifyListeners();
    } on FormatException {
      // Never the content: it is the user's text.
      debugPrint('history.json unreadable; starting with an empty history');
    }
  }

  /// Adds [conversation], or replaces the one with its id, at the top.
  Future<void> save(SavedConversation conversation) {
    _conversations
      ..removeWhere((c) => c.id == conversation.id)
      ..insert(0, conversation);
    notifyListeners();
    return _write();
  }

  /// Deletes conversation [id].
  Future<void> delete(String id) {
    _conversations.removeWhere((c) => c.id == id);
    notifyListeners();
    return _write();
  }

  /// Deletes every conversation and the file.
  Future<void> clear() {
    _conversations.clear();
    notifyListeners();
    return _write();
  }

  /// Writes one at a time, in order.
  Future<void> _write() => _writing = _writing.then((_) => _writeNow());

  Future<void> _writeNow() async {
    final file = this.file;
    if (file == null) return;
    try {
      if (_conversations.isEmpty) {
        if (await file.exists()) await file.delete();
        return;
      }
      final partial = File('${file.path}.partial');
      await partial.writeAsString(
        jsonEncode([for (final c in _conversations) c.toJson()]),
        flush: true,
      );
      await partial.rename(file.path);
    } on FileSystemException catch (e) {
      debugPrint('history.json not written (${e.osError?.errorCode})');
    } catch (e) {
      // Anything else (a record that cannot be encoded): keep the chain alive for the next
      // write. The type only: the message could quote the user's text.
      debugPrint('history.json not written (${e.runtimeType})');
    }
  }
}
