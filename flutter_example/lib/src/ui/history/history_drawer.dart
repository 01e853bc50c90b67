// The history drawer: past conversations (first question, date), to reopen read-only or
// delete. History is kept unencrypted on this device (see HistoryStore).

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/ui/common/formatting.dart';
import 'package:vazhi_example/src/ui/history/conversation_view_screen.dart';

/// The drawer listing past conversations.
class HistoryDrawer extends StatelessWidget {
  /// The drawer.
  const HistoryDrawer({super.key});

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final history = AppScope.of(context).history;
    return Drawer(
      child: SafeArea(
        child: ListenableBuilder(
          listenable: history,
          builder: (context, _) {
            final conversations = history.conversations;
            return ListView(
              children: [
                ListTile(
                  title: Text(l.historyTitle, style: Theme.of(context).textTheme.titleLarge),
                  subtitle: Text(l.historyStorageNote),
                ),
                const Divider(),
                if (conversations.isEmpty) ListTile(title: Text(l.historyEmpty)),
                for (final conversation in conversations)
                  ListTile(
                    title: Text(conversation.title, maxLines: 1, overflow: TextOverflow.ellipsis),
                    subtitle: Text(formatDateTime(l, conversation.startedAt)),
                    onTap: () {
                      Navigator.of(context).pop();
                      Navigator.of(context).push(MaterialPageRoute<void>(
                        builder: (_) => ConversationViewScreen(conversation: conversation),
                      ));
                    },
                    trailing: IconButton(
                      tooltip: l.deleteConversation,
                      icon: const Icon(Icons.delete_outline),
                      onPressed: () => history.delete(conversation.id),
                    ),
                  ),
              ],
            );
          },
        ),
      ),
    );
  }
}
