// Search and browse the knowledge packs: works before any model is downloaded. Full-text
// search results as cards (matches highlighted), and exact lookup by pack + key.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';
import 'package:vazhi_example/src/ui/common/knowledge_card_view.dart';
import 'package:vazhi_example/src/ui/search/card_detail_screen.dart';
import 'package:vazhi_example/src/ui/search/lookup_panel.dart';

/// The search screen.
class SearchScreen extends StatefulWidget {
  /// The screen.
  const SearchScreen({super.key});

  @override
  State<SearchScreen> createState() => _SearchScreenState();
}

class _SearchScreenState extends State<SearchScreen> {
  final _query = TextEditingController();
  List<SearchHit>? _hits;
  Object? _error;
  bool _searching = false;

  @override
  void dispose() {
    _query.dispose();
    super.dispose();
  }

  Future<void> _search() async {
    final query = _query.text.trim();
    if (query.isEmpty) return;
    final knowledge = AppScope.read(context).knowledge;
    setState(() {
      _searching = true;
      _error = null;
    });
    try {
      final hits = await knowledge.search(query, limit: 25);
      if (!mounted) return;
      setState(() => _hits = hits);
      debugPrint('search finished, hits=${hits.length}');
    } on Object catch (error) {
      if (!mounted) return;
      setState(() => _error = error);
    } finally {
      if (mounted) setState(() => _searching = false);
    }
  }

  void _open(KnowledgeCard card) {
    Navigator.of(context).push(MaterialPageRoute<void>(
      builder: (_) => CardDetailScreen(card: card),
    ));
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final hits = _hits;
    return Scaffold(
      appBar: AppBar(title: Text(l.searchTitle)),
      body: ListView(
        padding: const EdgeInsets.all(12),
        children: [
          TextField(
            controller: _query,
            textInputAction: TextInputAction.search,
            onSubmitted: (_) => _search(),
            decoration: InputDecoration(
              labelText: l.searchLabel,
              hintText: l.searchHint,
              border: const OutlineInputBorder(),
              suffixIcon: IconButton(
                tooltip: l.searchButton,
                icon: const Icon(Icons.search),
                onPressed: _searching ? null : _search,
              ),
            ),
          ),
          const SizedBox(height: 8),
          if (_error != null)
            Text(errorMessage(l, _error), style: TextStyle(color: Theme.of(context).colorScheme.error)),
          if (hits != null)
            Semantics(
              liveRegion: true,
              child: Padding(
                padding: const EdgeInsets.symmetric(vertical: 8),
                child: Text(l.searchResultCount(hits.length)),
              ),
            ),
          if (hits != null)
            for (final hit in hits)
              KnowledgeCardView(card: hit.card, snippet: hit.snippet, onTap: () => _open(hit.card)),
          const Divider(height: 32),
          LookupPanel(onOpen: _open),
        ],
      ),
    );
  }
}
