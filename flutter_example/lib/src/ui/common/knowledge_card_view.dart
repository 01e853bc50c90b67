// A knowledge card, verbatim: title, body (or a search snippet), pack title and version,
// source and licence. One semantics container, so a screen reader announces it as one card.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';

/// Shows one [KnowledgeCard].
class KnowledgeCardView extends StatelessWidget {
  /// Shows [card]; with [snippet] (a search hit's, matches in `[` `]`) instead of the body.
  const KnowledgeCardView({super.key, required this.card, this.snippet, this.onTap});

  /// The card.
  final KnowledgeCard card;

  /// A search snippet shown instead of the body.
  final String? snippet;

  /// Called when the card is tapped (e.g. to open it whole).
  final VoidCallback? onTap;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final theme = Theme.of(context);
    final small = theme.textTheme.bodySmall?.copyWith(
      color: theme.colorScheme.onSurfaceVariant,
    );
    final snippet = this.snippet;
    return Semantics(
      container: true,
      label: l.cardSemantics(card.title, card.source, card.licence),
      child: Card(
        clipBehavior: Clip.antiAlias,
        child: InkWell(
          onTap: onTap,
          child: Padding(
            padding: const EdgeInsets.all(12),
            child: Column(
              crossAxisAlignment: CrossAxisAlignment.start,
              children: [
                Text(card.title, style: theme.textTheme.titleMedium),
                const SizedBox(height: 8),
                if (snippet != null)
                  Text.rich(highlightedSnippet(snippet, theme))
                else
                  Text(card.body, style: theme.textTheme.bodyLarge),
                const SizedBox(height: 8),
                Text(l.cardPack(card.packTitle, card.packVersion), style: small),
                Text(l.cardSource(card.source), style: small),
                Text(l.cardLicence(card.licence), style: small),
              ],
            ),
          ),
        ),
      ),
    );
  }
}

/// [snippet] with its `[matches]` in bold, brackets removed.
TextSpan highlightedSnippet(String snippet, ThemeData theme) {
  final spans = <TextSpan>[];
  final bold = TextStyle(
    fontWeight: FontWeight.bold,
    backgroundColor: theme.colorScheme.secondaryContainer,
  );
  var rest = snippet;
  while (rest.isNotEmpty) {
    final open = rest.indexOf('[');
    final close = open < 0 ? -1 : rest.indexOf(']', open + 1);
    if (open < 0 || close < 0) {
      spans.add(TextSpan(text: rest));
      break;
    }
    if (open > 0) spans.add(TextSpan(text: rest.substring(0, open)));
    spans.add(TextSpan(text: rest.substring(open + 1, close), style: bold));
    rest = rest.substring(close + 1);
  }
  return TextSpan(style: theme.textTheme.bodyLarge, children: spans);
}
