// The models screen: each catalog model with its status and actions. Downloads go on while
// the user is on another tab (their state is in AppState.downloads).

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/ui/models/model_tile.dart';

/// The models screen.
class ModelsScreen extends StatefulWidget {
  /// The screen.
  const ModelsScreen({super.key});

  @override
  State<ModelsScreen> createState() => _ModelsScreenState();
}

class _ModelsScreenState extends State<ModelsScreen> {
  bool _refreshed = false;

  @override
  void didChangeDependencies() {
    super.didChangeDependencies();
    if (!_refreshed) {
      _refreshed = true;
      AppScope.read(context).downloads.refreshAll();
    }
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final state = AppScope.of(context);
    final downloads = state.downloads;
    return Scaffold(
      appBar: AppBar(
        title: Text(l.modelsTitle),
        actions: [
          IconButton(
            tooltip: l.refresh,
            icon: const Icon(Icons.refresh),
            onPressed: downloads.refreshAll,
          ),
        ],
      ),
      body: ListenableBuilder(
        listenable: downloads,
        builder: (context, _) => ListView(
          padding: const EdgeInsets.all(12),
          children: [
            Text(l.modelsIntro),
            const SizedBox(height: 8),
            if (downloads.offline) _OfflineBanner(onSettings: () => state.showTab(HomeTab.settings)),
            for (final entry in downloads.entries) ModelTile(entry: entry),
          ],
        ),
      ),
    );
  }
}

class _OfflineBanner extends StatelessWidget {
  const _OfflineBanner({required this.onSettings});

  final VoidCallback onSettings;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return Card(
      color: Theme.of(context).colorScheme.secondaryContainer,
      child: ListTile(
        leading: const Icon(Icons.cloud_off),
        title: Text(l.offlineBanner),
        trailing: TextButton(onPressed: onSettings, child: Text(l.openSettings)),
      ),
    );
  }
}
