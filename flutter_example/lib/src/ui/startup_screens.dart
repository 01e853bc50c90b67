// What the app shows while it opens (packs imported, model loaded), or if it could not open.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';

/// Shown while the data directory, packs and model open.
class OpeningScreen extends StatelessWidget {
  /// The screen.
  const OpeningScreen({super.key});

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return Scaffold(
      body: Center(
        child: Column(
          mainAxisSize: MainAxisSize.min,
          children: [
            const CircularProgressIndicator(),
            const SizedBox(height: 16),
            Semantics(liveRegion: true, child: Text(l.opening)),
          ],
        ),
      ),
    );
  }
}

/// Shown when the app could not open its data.
class OpenFailedScreen extends StatelessWidget {
  /// The screen for [error].
  const OpenFailedScreen({super.key, required this.error});

  /// Why it failed.
  final Object? error;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return Scaffold(
      body: Center(
        child: Padding(
          padding: const EdgeInsets.all(24),
          child: Text('${l.openFailed}\n\n${errorMessage(l, error)}', textAlign: TextAlign.center),
        ),
      ),
    );
  }
}
