// One knowledge card, whole (opened from a search result).

import 'package:flutter/material.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/ui/common/knowledge_card_view.dart';

/// Shows [card] on its own page.
class CardDetailScreen extends StatelessWidget {
  /// The page for [card].
  const CardDetailScreen({super.key, required this.card});

  /// The card.
  final KnowledgeCard card;

  @override
  Widget build(BuildContext context) {
    return Scaffold(
      appBar: AppBar(title: Text(card.title, maxLines: 1, overflow: TextOverflow.ellipsis)),
      body: ListView(
        padding: const EdgeInsets.all(12),
        children: [KnowledgeCardView(card: card)],
      ),
    );
  }
}
