// The MaterialApp: Material 3 theme, English and Tamil, and the AppScope above the navigator
// (so pushed routes see the state too). Shows the opening screen until the app state is open.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/ui/home_shell.dart';
import 'package:vazhi_example/src/ui/startup_screens.dart';

/// The example app.
class VazhiExampleApp extends StatefulWidget {
  /// The app, opened by [open] (the bootstrap in main.dart; an in-memory state in tests).
  const VazhiExampleApp({super.key, required this.open, this.onOpened});

  /// Opens the app state.
  final Future<AppState> Function() open;

  /// Called once with the opened state (main.dart hooks memory pressure up here).
  final void Function(AppState state)? onOpened;

  @override
  State<VazhiExampleApp> createState() => _VazhiExampleAppState();
}

class _VazhiExampleAppState extends State<VazhiExampleApp> {
  late final Future<AppState> _opening = widget.open().then((state) {
    widget.onOpened?.call(state);
    return state;
  });

  @override
  Widget build(BuildContext context) {
    return FutureBuilder<AppState>(
      future: _opening,
      builder: (context, snapshot) {
        final state = snapshot.data;
        return AppScope(
          state: state,
          child: MaterialApp(
            onGenerateTitle: (context) => AppLocalizations.of(context).appTitle,
            theme: ThemeData(colorSchemeSeed: Colors.teal, useMaterial3: true),
            darkTheme: ThemeData(
              colorSchemeSeed: Colors.teal,
              brightness: Brightness.dark,
              useMaterial3: true,
            ),
            localizationsDelegates: AppLocalizations.localizationsDelegates,
            supportedLocales: AppLocalizations.supportedLocales,
            home: state != null
                ? const HomeShell()
                : snapshot.hasError
                    ? OpenFailedScreen(error: snapshot.error)
                    : const OpeningScreen(),
          ),
        );
      },
    );
  }
}
