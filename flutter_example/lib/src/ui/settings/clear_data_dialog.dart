// Confirms "clear data" (every rating, the history, and optionally the downloaded models).

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';

/// What the user chose to clear.
class ClearDataChoice {
  /// Ratings and history, plus models when [removeModels].
  const ClearDataChoice({required this.removeModels});

  /// Also remove the downloaded models.
  final bool removeModels;
}

/// The confirmation dialog.
class ClearDataDialog extends StatefulWidget {
  /// The dialog.
  const ClearDataDialog({super.key});

  /// Shows the dialog; null when cancelled.
  static Future<ClearDataChoice?> show(BuildContext context) => showDialog<ClearDataChoice>(
        context: context,
        builder: (context) => const ClearDataDialog(),
      );

  @override
  State<ClearDataDialog> createState() => _ClearDataDialogState();
}

class _ClearDataDialogState extends State<ClearDataDialog> {
  bool _removeModels = false;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return AlertDialog(
      title: Text(l.clearDataConfirmTitle),
      content: Column(
        mainAxisSize: MainAxisSize.min,
        children: [
          Text(l.clearDataConfirmBody),
          CheckboxListTile(
            contentPadding: EdgeInsets.zero,
            value: _removeModels,
            onChanged: (value) => setState(() => _removeModels = value ?? false),
            title: Text(l.clearDataRemoveModels),
          ),
        ],
      ),
      actions: [
        TextButton(onPressed: () => Navigator.of(context).pop(), child: Text(l.cancel)),
        FilledButton(
          onPressed: () =>
              Navigator.of(context).pop(ClearDataChoice(removeModels: _removeModels)),
          child: Text(l.clearDataConfirm),
        ),
      ],
    );
  }
}
