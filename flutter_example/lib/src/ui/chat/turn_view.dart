// One question and its answer: the source badge, knowledge cards, the model's text (a live
// region while it streams), what the model would add when none is loaded, stopped or failed
// notes, and the rating buttons.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';
import 'package:vazhi_example/src/ui/chat/feedback_bar.dart';
import 'package:vazhi_example/src/ui/chat/source_badge.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';
import 'package:vazhi_example/src/ui/common/knowledge_card_view.dart';

/// Shows one [ChatTurn].
class TurnView extends StatelessWidget {
  /// Shows [turn]; [readOnly] (history) hides the rating buttons, [onOpenModels] shows a
  /// button to the models screen when the model was unavailable.
  const TurnView({super.key, required this.turn, this.readOnly = false, this.onOpenModels});

  /// The turn.
  final ChatTurn turn;

  /// Past conversations are shown without rating buttons.
  final bool readOnly;

  /// Opens the models screen.
  final VoidCallback? onOpenModels;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final theme = Theme.of(context);
    final done = turn.phase == AnswerPhase.done;
    return Padding(
      padding: const EdgeInsets.symmetric(horizontal: 12, vertical: 8),
      child: Column(
        crossAxisAlignment: CrossAxisAlignment.stretch,
        children: [
          _QuestionBubble(text: turn.question),
          const SizedBox(height: 8),
          if (turn.source != AnswerSource.none)
            Align(alignment: Alignment.centerLeft, child: SourceBadge(source: turn.source)),
          if (turn.phase == AnswerPhase.waiting ||
              (turn.phase == AnswerPhase.streaming && turn.source == AnswerSource.none))
            Semantics(liveRegion: true, child: Text(l.answerWaiting)),
          for (final card in turn.cards) KnowledgeCardView(card: card),
          if (turn.text.isNotEmpty)
            _ModelText(text: turn.text, streaming: turn.phase == AnswerPhase.streaming),
          if (done && turn.modelUnavailable)
            _ModelUnavailableNote(onOpenModels: onOpenModels),
          if (done && turn.wasStopped)
            Text(l.answerStopped, style: theme.textTheme.bodySmall),
          if (done && !turn.wasStopped && turn.cards.isEmpty && turn.text.isEmpty &&
              !turn.modelUnavailable)
            Text(l.answerEmpty),
          if (turn.phase == AnswerPhase.failed)
            Semantics(
              liveRegion: true,
              child: Text(
                turn.errorCode == null
                    ? l.errorUnexpected
                    : errorCodeMessage(l, turn.errorCode!),
                style: TextStyle(color: theme.colorScheme.error),
              ),
            ),
          if (done && !readOnly)
            Align(alignment: Alignment.centerLeft, child: FeedbackBar(turn: turn)),
        ],
      ),
    );
  }
}

class _QuestionBubble extends StatelessWidget {
  const _QuestionBubble({required this.text});

  final String text;

  @override
  Widget build(BuildContext context) {
    final scheme = Theme.of(context).colorScheme;
    return Align(
      alignment: Alignment.centerRight,
      child: Container(
        constraints: const BoxConstraints(maxWidth: 480),
        padding: const EdgeInsets.all(12),
        decoration: BoxDecoration(
          color: scheme.primaryContainer,
          borderRadius: BorderRadius.circular(16),
        ),
        child: Text(text),
      ),
    );
  }
}

/// The model's text; announced as it grows (a live region) while streaming.
class _ModelText extends StatelessWidget {
  const _ModelText({required this.text, required this.streaming});

  final String text;
  final bool streaming;

  @override
  Widget build(BuildContext context) {
    final scheme = Theme.of(context).colorScheme;
    return Semantics(
      liveRegion: streaming,
      container: true,
      child: Container(
        margin: const EdgeInsets.only(top: 8),
        padding: const EdgeInsets.all(12),
        decoration: BoxDecoration(
          color: scheme.surfaceContainerHighest,
          borderRadius: BorderRadius.circular(16),
        ),
        child: Text(text),
      ),
    );
  }
}

/// Says plainly what a model would add, with a way to get one.
class _ModelUnavailableNote extends StatelessWidget {
  const _ModelUnavailableNote({required this.onOpenModels});

  final VoidCallback? onOpenModels;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final onOpenModels = this.onOpenModels;
    return Padding(
      padding: const EdgeInsets.only(top: 8),
      child: Row(
        children: [
          const Icon(Icons.info_outline, size: 18),
          const SizedBox(width: 8),
          Expanded(child: Text(l.modelUnavailableNote)),
          if (onOpenModels != null)
            TextButton(onPressed: onOpenModels, child: Text(l.getModel)),
        ],
      ),
    );
  }
}
