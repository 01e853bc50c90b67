// KnowledgeService over the native KnowledgeBase (its own SQLite connection beside VazhiApp's).

import 'package:vazhi_example/src/rust/api/knowledge.dart';
import 'package:vazhi_example/src/rust/api/records.dart';
import 'package:vazhi_example/src/services/knowledge_service.dart';

/// The app's [KnowledgeService]: the knowledge base of the data directory.
class VazhiKnowledge implements KnowledgeService {
  /// Wraps an open [KnowledgeBase].
  VazhiKnowledge(this._base);

  /// Opens (creating if needed) the knowledge base in [dataDir].
  static Future<VazhiKnowledge> open(String dataDir) async =>
      VazhiKnowledge(await KnowledgeBase.open(dataDir: dataDir));

  final KnowledgeBase _base;

  @override
  Future<List<SearchHit>> search(String query, {int limit = 20, String? pack}) =>
      _base.search(query: query, limit: limit, pack: pack);

  @override
  Future<Card?> lookup({required String pack, required String key}) =>
      _base.lookup(pack: pack, key: key);

  @override
  Future<List<PackInfo>> packs() => _base.packs();
}
