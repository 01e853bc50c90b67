// The app's frame: bottom navigation between Chat, Search, Models and Settings (screens kept
// alive in an IndexedStack), plus the one-time notices after start: the feedback key was lost,
// or the installed model did not load.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/ui/chat/chat_screen.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';
import 'package:vazhi_example/src/ui/models/models_screen.dart';
import 'package:vazhi_example/src/ui/search/search_screen.dart';
import 'package:vazhi_example/src/ui/settings/settings_screen.dart';

/// The home screen with its four tabs.
class HomeShell extends StatefulWidget {
  /// The shell.
  const HomeShell({super.key});

  @override
  State<HomeShell> createState() => _HomeShellState();
}

class _HomeShellState extends State<HomeShell> {
  bool _noticesShown = false;

  @override
  void didChangeDependencies() {
    super.didChangeDependencies();
    if (!_noticesShown) {
      _noticesShown = true;
      WidgetsBinding.instance.addPostFrameCallback((_) => _showNotices());
    }
  }

  Future<void> _showNotices() async {
    if (!mounted) return;
    final l = AppLocalizations.of(context);
    final state = AppScope.read(context);
    final startupError = state.startupError;
    if (startupError != null) {
      state.clearStartupError();
      ScaffoldMessenger.of(context).showSnackBar(
        SnackBar(content: Text(l.modelNotLoadedAtStart(errorMessage(l, startupError)))),
      );
    }
    if (state.feedbackKeyLost) {
      final startFresh = await showDialog<bool>(
        context: context,
        barrierDismissible: false,
        builder: (context) => AlertDialog(
          title: Text(l.keyLostTitle),
          content: Text(l.keyLostBody),
          actions: [
            TextButton(onPressed: () => Navigator.of(context).pop(false), child: Text(l.notNow)),
            FilledButton(
              onPressed: () => Navigator.of(context).pop(true),
              child: Text(l.keyLostStartFresh),
            ),
          ],
        ),
      );
      if (startFresh ?? false) {
        try {
          await state.startFreshFeedback();
        } on Object catch (error) {
          if (mounted) {
            ScaffoldMessenger.of(context).showSnackBar(
              SnackBar(content: Text(errorMessage(l, error))),
            );
          }
        }
      } else {
        state.dismissFeedbackKeyLoss();
      }
    }
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final state = AppScope.of(context);
    return Scaffold(
      body: IndexedStack(
        index: state.tab.index,
        children: const [ChatScreen(), SearchScreen(), ModelsScreen(), SettingsScreen()],
      ),
      bottomNavigationBar: NavigationBar(
        selectedIndex: state.tab.index,
        onDestinationSelected: (i) => state.showTab(HomeTab.values[i]),
        destinations: [
          NavigationDestination(
            icon: const Icon(Icons.chat_bubble_outline),
            selectedIcon: const Icon(Icons.chat_bubble),
            label: l.tabChat,
          ),
          NavigationDestination(
            icon: const Icon(Icons.search),
            label: l.tabSearch,
          ),
          NavigationDestination(
            icon: const Icon(Icons.download_outlined),
            selectedIcon: const Icon(Icons.download),
            label: l.tabModels,
          ),
          NavigationDestination(
            icon: const Icon(Icons.settings_outlined),
            selectedIcon: const Icon(Icons.settings),
            label: l.tabSettings,
          ),
        ],
      ),
    );
  }
}
