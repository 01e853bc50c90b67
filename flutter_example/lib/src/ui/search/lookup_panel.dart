// Exact lookup by pack and key (e.g. thirukkural + "குறள் 1", "kural 1" or "1"; native digits
// and case are normalised by Vazhi).

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';
import 'package:vazhi_example/src/ui/common/knowledge_card_view.dart';

/// Pack picker, key field and the record found.
class LookupPanel extends StatefulWidget {
  /// The panel; [onOpen] shows a card whole.
  const LookupPanel({super.key, required this.onOpen});

  /// Opens a card.
  final void Function(KnowledgeCard card) onOpen;

  @override
  State<LookupPanel> createState() => _LookupPanelState();
}

class _LookupPanelState extends State<LookupPanel> {
  final _key = TextEditingController();
  Future<List<PackInfo>>? _packs;
  String? _pack;
  KnowledgeCard? _card;
  bool _looked = false;
  Object? _error;

  @override
  void didChangeDependencies() {
    super.didChangeDependencies();
    _packs ??= AppScope.read(context).knowledge.packs();
  }

  @override
  void dispose() {
    _key.dispose();
    super.dispose();
  }

  Future<void> _lookup(String pack) async {
    final key = _key.text.trim();
    if (key.isEmpty) return;
    final knowledge = AppScope.read(context).knowledge;
    try {
      final card = await knowledge.lookup(pack: pack, key: key);
      if (!mounted) return;
      setState(() {
        _card = card;
        _looked = true;
        _error = null;
      });
    } on Object catch (error) {
      if (!mounted) return;
      setState(() => _error = error);
    }
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    return FutureBuilder<List<PackInfo>>(
      future: _packs,
      builder: (context, snapshot) {
        final packs = snapshot.data ?? const <PackInfo>[];
        if (packs.isEmpty) return const SizedBox.shrink();
        final pack = packs.any((p) => p.name == _pack) ? _pack! : packs.first.name;
        final card = _card;
        return Column(
          crossAxisAlignment: CrossAxisAlignment.start,
          children: [
            Text(l.lookupTitle, style: Theme.of(context).textTheme.titleMedium),
            const SizedBox(height: 8),
            DropdownButton<String>(
              value: pack,
              isExpanded: true,
              items: [
                for (final p in packs)
                  DropdownMenuItem(value: p.name, child: Text(p.title, overflow: TextOverflow.ellipsis)),
              ],
              onChanged: (name) => setState(() => _pack = name),
            ),
            const SizedBox(height: 8),
            Row(
              children: [
                Expanded(
                  child: TextField(
                    controller: _key,
                    textInputAction: TextInputAction.search,
                    onSubmitted: (_) => _lookup(pack),
                    decoration: InputDecoration(
                      labelText: l.lookupKeyLabel,
                      hintText: l.lookupKeyHint,
                      border: const OutlineInputBorder(),
                    ),
                  ),
                ),
                const SizedBox(width: 8),
                FilledButton(onPressed: () => _lookup(pack), child: Text(l.lookupButton)),
              ],
            ),
            const SizedBox(height: 8),
            if (_error != null) Text(errorMessage(l, _error)),
            if (card != null)
              KnowledgeCardView(card: card, onTap: () => widget.onOpen(card))
            else if (_looked)
              Text(l.lookupNotFound),
          ],
        );
      },
    );
  }
}
