// The question field with its send button, which becomes a stop button while an answer
// streams.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';

/// The chat's input row.
class Composer extends StatelessWidget {
  /// An input row editing [controller].
  const Composer({
    super.key,
    required this.controller,
    required this.answering,
    required this.onSend,
    required this.onStop,
  });

  /// The question's text.
  final TextEditingController controller;

  /// Whether an answer is streaming (stop instead of send).
  final bool answering;

  /// Sends the text.
  final VoidCallback onSend;

  /// Stops the answer.
  final VoidCallback onStop;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return SafeArea(
      top: false,
      child: Padding(
        padding: const EdgeInsets.fromLTRB(12, 4, 4, 8),
        child: Row(
          children: [
            Expanded(
              child: TextField(
                controller: controller,
                minLines: 1,
                maxLines: 4,
                textInputAction: TextInputAction.send,
                onSubmitted: answering ? null : (_) => onSend(),
                decoration: InputDecoration(
                  hintText: l.questionHint,
                  border: const OutlineInputBorder(),
                ),
              ),
            ),
            const SizedBox(width: 4),
            if (answering)
              IconButton.filledTonal(
                tooltip: l.stop,
                icon: const Icon(Icons.stop),
                onPressed: onStop,
              )
            else
              IconButton.filled(
                tooltip: l.send,
                icon: const Icon(Icons.send),
                onPressed: onSend,
              ),
          ],
        ),
      ),
    );
  }
}
