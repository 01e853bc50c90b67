// The chat: past turns, the answer streaming into its bubble, the question field with send /
// stop, a new-conversation button, and the history drawer.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/ui/chat/composer.dart';
import 'package:vazhi_example/src/ui/chat/turn_view.dart';
import 'package:vazhi_example/src/ui/history/history_drawer.dart';

/// The chat screen.
class ChatScreen extends StatefulWidget {
  /// The screen.
  const ChatScreen({super.key});

  @override
  State<ChatScreen> createState() => _ChatScreenState();
}

class _ChatScreenState extends State<ChatScreen> {
  final _input = TextEditingController();
  final _scroll = ScrollController();

  @override
  void dispose() {
    _input.dispose();
    _scroll.dispose();
    super.dispose();
  }

  void _send(AppState state) {
    final text = _input.text;
    if (text.trim().isEmpty || state.chat.isAnswering) return;
    state.chat.send(text);
    _input.clear();
  }

  void _followEnd() {
    WidgetsBinding.instance.addPostFrameCallback((_) {
      if (_scroll.hasClients) _scroll.jumpTo(_scroll.position.maxScrollExtent);
    });
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final state = AppScope.of(context);
    final chat = state.chat;
    return Scaffold(
      appBar: AppBar(
        title: Text(l.chatTitle),
        actions: [
          IconButton(
            tooltip: l.newConversation,
            icon: const Icon(Icons.add_comment_outlined),
            onPressed: chat.newConversation,
          ),
        ],
      ),
      drawer: const HistoryDrawer(),
      body: ListenableBuilder(
        listenable: chat,
        builder: (context, _) {
          final turns = chat.turns;
          _followEnd();
          return Column(
            children: [
              Expanded(
                child: turns.isEmpty
                    ? _EmptyChat(hasModel: state.assistant.hasModel)
                    : ListView.builder(
                        controller: _scroll,
                        itemCount: turns.length,
                        itemBuilder: (context, i) => TurnView(
                          turn: turns[i],
                          onOpenModels: () => state.showTab(HomeTab.models),
                        ),
                      ),
              ),
              Composer(
                controller: _input,
                answering: chat.isAnswering,
                onSend: () => _send(state),
                onStop: chat.stop,
              ),
            ],
          );
        },
      ),
    );
  }
}

/// What to ask, before the first question.
class _EmptyChat extends StatelessWidget {
  const _EmptyChat({required this.hasModel});

  final bool hasModel;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return Center(
      child: Padding(
        padding: const EdgeInsets.all(24),
        child: Column(
          mainAxisSize: MainAxisSize.min,
          children: [
            Icon(Icons.forum_outlined, size: 48, color: Theme.of(context).colorScheme.primary),
            const SizedBox(height: 12),
            Text(l.chatEmpty, textAlign: TextAlign.center),
            const SizedBox(height: 8),
            Text(hasModel ? l.chatEmptyWithModel : l.chatEmptyNoModel, textAlign: TextAlign.center),
          ],
        ),
      ),
    );
  }
}
