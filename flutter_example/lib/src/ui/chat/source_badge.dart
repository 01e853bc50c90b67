// Says where an answer came from: the knowledge base (verbatim cards), the model (generated
// text), or both. Users must always be able to tell facts from a pack from generated text.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';

/// The source badge of one answer.
class SourceBadge extends StatelessWidget {
  /// A badge for [source]; nothing for [AnswerSource.none].
  const SourceBadge({super.key, required this.source});

  /// Where the answer came from.
  final AnswerSource source;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final scheme = Theme.of(context).colorScheme;
    final (IconData icon, String label, Color color) = switch (source) {
      AnswerSource.knowledge => (Icons.menu_book_outlined, l.sourceKnowledge, scheme.tertiaryContainer),
      AnswerSource.model => (Icons.auto_awesome_outlined, l.sourceModel, scheme.secondaryContainer),
      AnswerSource.both => (Icons.merge_type, l.sourceBoth, scheme.primaryContainer),
      AnswerSource.none => (Icons.hourglass_empty, '', scheme.surface),
    };
    if (source == AnswerSource.none) return const SizedBox.shrink();
    return Semantics(
      container: true,
      label: l.sourceBadgeSemantics(label),
      excludeSemantics: true,
      child: Container(
        padding: const EdgeInsets.symmetric(horizontal: 8, vertical: 4),
        decoration: BoxDecoration(color: color, borderRadius: BorderRadius.circular(8)),
        child: Row(
          mainAxisSize: MainAxisSize.min,
          children: [
            Icon(icon, size: 16),
            const SizedBox(width: 4),
            Text(label, style: Theme.of(context).textTheme.labelMedium),
          ],
        ),
      ),
    );
  }
}
