// Ratings on this device: how many are kept (encrypted), and exporting them, decrypted, to a
// file the user may choose to share.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';

/// The ratings part of the settings screen.
class FeedbackSection extends StatefulWidget {
  /// The section.
  const FeedbackSection({super.key});

  @override
  State<FeedbackSection> createState() => _FeedbackSectionState();
}

class _FeedbackSectionState extends State<FeedbackSection> {
  Future<int>? _count;
  bool _exporting = false;

  @override
  void didChangeDependencies() {
    super.didChangeDependencies();
    // Recounted whenever the app state changes (a rating, clear data, a new store).
    _count = AppScope.of(context).feedback?.count();
  }

  Future<void> _export() async {
    final l = AppLocalizations.of(context);
    final messenger = ScaffoldMessenger.of(context);
    final state = AppScope.read(context);
    setState(() => _exporting = true);
    try {
      final (path, report) = await state.exportFeedback();
      messenger.showSnackBar(SnackBar(
        duration: const Duration(seconds: 8),
        content: Text(l.feedbackExported(report.exported, path, report.unreadable)),
      ));
    } on Object catch (error) {
      messenger.showSnackBar(SnackBar(content: Text(errorMessage(l, error))));
    } finally {
      if (mounted) setState(() => _exporting = false);
    }
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final available = AppScope.of(context).feedback != null;
    return Column(
      children: [
        ListTile(
          leading: const Icon(Icons.lock_outline),
          title: Text(l.feedbackTitle),
          subtitle: available
              ? FutureBuilder<int>(
                  future: _count,
                  builder: (context, snapshot) => Text(
                    snapshot.hasData ? l.feedbackCount(snapshot.data!) : l.feedbackCounting,
                  ),
                )
              : Text(l.feedbackUnavailable),
        ),
        ListTile(
          leading: const Icon(Icons.file_upload_outlined),
          title: Text(l.feedbackExport),
          subtitle: Text(l.feedbackExportDescription),
          enabled: available && !_exporting,
          onTap: _export,
        ),
      ],
    );
  }
}
