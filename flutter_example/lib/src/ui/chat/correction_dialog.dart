// The correction box: asks what the answer should have said. Returns the text (possibly
// empty) when saved, null when cancelled.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';

/// A dialog asking for a correction.
class CorrectionDialog extends StatefulWidget {
  /// The dialog.
  const CorrectionDialog({super.key});

  /// Shows the dialog; the correction, or null when cancelled.
  static Future<String?> show(BuildContext context) => showDialog<String>(
        context: context,
        builder: (context) => const CorrectionDialog(),
      );

  @override
  State<CorrectionDialog> createState() => _CorrectionDialogState();
}

class _CorrectionDialogState extends State<CorrectionDialog> {
  final _text = TextEditingController();

  @override
  void dispose() {
    _text.dispose();
    super.dispose();
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return AlertDialog(
      title: Text(l.correctionTitle),
      content: Column(
        mainAxisSize: MainAxisSize.min,
        crossAxisAlignment: CrossAxisAlignment.start,
        children: [
          Text(l.correctionExplanation),
          const SizedBox(height: 12),
          TextField(
            controller: _text,
            autofocus: true,
            minLines: 2,
            maxLines: 6,
            maxLength: 2000,
            decoration: InputDecoration(
              labelText: l.correctionLabel,
              border: const OutlineInputBorder(),
            ),
          ),
        ],
      ),
      actions: [
        TextButton(
          onPressed: () => Navigator.of(context).pop(),
          child: Text(l.cancel),
        ),
        FilledButton(
          onPressed: () => Navigator.of(context).pop(_text.text),
          child: Text(l.save),
        ),
      ],
    );
  }
}
