// The knowledge packs as the UI sees them. The app's implementation is VazhiKnowledge (over the
// native KnowledgeBase); widget tests pass a fake. Works with no model at all.

import 'package:vazhi_example/src/services/vazhi_types.dart';

/// What the app needs from Vazhi's knowledge base.
abstract class KnowledgeService {
  /// Full-text search over the installed packs (or only [pack]).
  Future<List<SearchHit>> search(String query, {int limit = 20, String? pack});

  /// The record with exactly this [key] in [pack] (e.g. `thirukkural`, `குறள் 1`), if any.
  Future<KnowledgeCard?> lookup({required String pack, required String key});

  /// The installed packs.
  Future<List<PackInfo>> packs();
}
