// A past conversation, read-only (no rating, no asking).

import 'package:flutter/material.dart';
import 'package:vazhi_example/src/state/history_store.dart';
import 'package:vazhi_example/src/ui/chat/turn_view.dart';

/// Shows a saved conversation.
class ConversationViewScreen extends StatelessWidget {
  /// Shows [conversation].
  const ConversationViewScreen({super.key, required this.conversation});

  /// The conversation.
  final SavedConversation conversation;

  @override
  Widget build(BuildContext context) {
    return Scaffold(
      appBar: AppBar(
        title: Text(conversation.title, maxLines: 1, overflow: TextOverflow.ellipsis),
      ),
      body: ListView(
        children: [
          for (final turn in conversation.turns) TurnView(turn: turn, readOnly: true),
        ],
      ),
    );
  }
}
