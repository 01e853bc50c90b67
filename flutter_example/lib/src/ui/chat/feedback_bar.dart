// Thumbs up / down under a finished answer. Up records at once; down opens the correction box
// first. Ratings go to Vazhi's encrypted feedback store, on this device only.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';
import 'package:vazhi_example/src/ui/chat/correction_dialog.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';

/// The rating buttons of one answer.
class FeedbackBar extends StatefulWidget {
  /// Buttons rating [turn].
  const FeedbackBar({super.key, required this.turn});

  /// The rated turn.
  final ChatTurn turn;

  @override
  State<FeedbackBar> createState() => _FeedbackBarState();
}

class _FeedbackBarState extends State<FeedbackBar> {
  bool _saving = false;

  Future<void> _rate(Rating rating) async {
    final l = AppLocalizations.of(context);
    final messenger = ScaffoldMessenger.of(context);
    final state = AppScope.read(context);
    String? correction;
    if (rating == Rating.down) {
      correction = await CorrectionDialog.show(context);
      if (correction == null || !mounted) return; // cancelled
    }
    setState(() => _saving = true);
    try {
      await state.rate(widget.turn, rating, correction: correction);
      messenger.showSnackBar(SnackBar(content: Text(l.feedbackSaved)));
    } on Object catch (error) {
      messenger.showSnackBar(SnackBar(content: Text(errorMessage(l, error))));
    } finally {
      if (mounted) setState(() => _saving = false);
    }
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final rating = widget.turn.rating;
    return Row(
      mainAxisSize: MainAxisSize.min,
      children: [
        IconButton(
          tooltip: l.rateUp,
          isSelected: rating == Rating.up,
          icon: const Icon(Icons.thumb_up_outlined),
          selectedIcon: const Icon(Icons.thumb_up),
          onPressed: _saving ? null : () => _rate(Rating.up),
        ),
        IconButton(
          tooltip: l.rateDown,
          isSelected: rating == Rating.down,
          icon: const Icon(Icons.thumb_down_outlined),
          selectedIcon: const Icon(Icons.thumb_down),
          onPressed: _saving ? null : () => _rate(Rating.down),
        ),
      ],
    );
  }
}
