// Settings: the offline switch, ratings (count, export), clear data, and about.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';
import 'package:vazhi_example/src/ui/settings/about_section.dart';
import 'package:vazhi_example/src/ui/settings/clear_data_dialog.dart';
import 'package:vazhi_example/src/ui/settings/feedback_section.dart';

/// The settings screen.
class SettingsScreen extends StatefulWidget {
  /// The screen.
  const SettingsScreen({super.key});

  @override
  State<SettingsScreen> createState() => _SettingsScreenState();
}

class _SettingsScreenState extends State<SettingsScreen> {
  bool _switching = false;

  Future<void> _setOffline(bool offline) async {
    final l = AppLocalizations.of(context);
    final messenger = ScaffoldMessenger.of(context);
    final state = AppScope.read(context);
    setState(() => _switching = true);
    try {
      await state.setOffline(offline);
    } on Object catch (error) {
      messenger.showSnackBar(SnackBar(content: Text(errorMessage(l, error))));
    } finally {
      if (mounted) setState(() => _switching = false);
    }
  }

  Future<void> _clearData() async {
    final l = AppLocalizations.of(context);
    final messenger = ScaffoldMessenger.of(context);
    final state = AppScope.read(context);
    final choice = await ClearDataDialog.show(context);
    if (choice == null) return;
    try {
      final ratings = await state.clearData(removeModels: choice.removeModels);
      messenger.showSnackBar(SnackBar(content: Text(l.dataCleared(ratings))));
    } on Object catch (error) {
      messenger.showSnackBar(SnackBar(content: Text(errorMessage(l, error))));
    }
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final state = AppScope.of(context);
    return Scaffold(
      appBar: AppBar(title: Text(l.settingsTitle)),
      body: ListView(
        children: [
          SwitchListTile(
            secondary: const Icon(Icons.cloud_off),
            title: Text(l.offlineMode),
            subtitle: Text(l.offlineModeDescription),
            value: state.models.isOffline,
            onChanged: _switching ? null : _setOffline,
          ),
          const Divider(),
          const FeedbackSection(),
          const Divider(),
          ListTile(
            leading: const Icon(Icons.delete_forever_outlined),
            title: Text(l.clearData),
            subtitle: Text(l.clearDataDescription),
            onTap: _clearData,
          ),
          const Divider(),
          const AboutSection(),
        ],
      ),
    );
  }
}
