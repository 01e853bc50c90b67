// The real native library, on a device or desktop: `flutter test integration_test` (after
// tool/copy-packs.sh). The same contract the Rust tests (ffi/tests/contract.rs) and the Kotlin
// binding tests check: a kural answered by lookup from the bundled pack, a blank question
// refused with invalidInput, search with no model, downloads refused offline, and encrypted
// feedback with keys from a Dart provider.

import 'dart:async';
import 'dart:io';
import 'dart:math';
import 'dart:typed_data';

import 'package:flutter_rust_bridge/flutter_rust_bridge_for_generated.dart' show ExternalLibrary;
import 'package:flutter_test/flutter_test.dart';
import 'package:integration_test/integration_test.dart';
import 'package:vazhi_example/src/rust/api.dart';
import 'package:vazhi_example/src/rust/api/assistant.dart';
import 'package:vazhi_example/src/rust/api/error.dart';
import 'package:vazhi_example/src/rust/api/feedback.dart';
import 'package:vazhi_example/src/rust/api/knowledge.dart';
import 'package:vazhi_example/src/rust/api/models.dart';
import 'package:vazhi_example/src/rust/api/records.dart';
import 'package:vazhi_example/src/rust/frb_generated.dart';
import 'package:vazhi_example/src/services/asset_packs.dart';
import 'package:vazhi_example/src/services/vazhi/vazhi_assistant.dart';

/// Keys in memory, as the app's SecureKeys keeps them in the platform's secure storage.
class MemoryKeys {
  /// The keys, by id.
  final Map<String, Uint8List> keys = {};
  final Random _random = Random.secure();

  /// The key, or none.
  FutureOr<KeyReply> get(String keyId) => KeyReply(key: keys[keyId]);

  /// A new random key.
  FutureOr<KeyReply> create(String keyId) {
    final key = Uint8List.fromList(List<int>.generate(32, (_) => _random.nextInt(256)));
    keys[keyId] = key;
    return KeyReply(key: key);
  }

  /// Deletes the key.
  FutureOr<KeyReply> delete(String keyId) {
    keys.remove(keyId);
    return const KeyReply();
  }
}

Matcher throwsVazhi(VazhiErrorCode code) =>
    throwsA(isA<VazhiException>().having((e) => e.code, 'code', code));

void main() {
  IntegrationTestWidgetsFlutterBinding.ensureInitialized();

  late Directory dir;
  late List<String> packDirs;
  late VazhiApp app;

  setUpAll(() async {
    // As in lib/main.dart: statically linked on iOS.
    await RustLib.init(
      externalLibrary: Platform.isIOS ? ExternalLibrary.process(iKnowHowToUseIt: true) : null,
    );
    dir = await Directory.systemTemp.createTemp('vazhi-it-');
    packDirs = await AssetPacks.install(dir.path);
    app = await VazhiApp.open(
      config: VazhiAppConfig(dataDir: dir.path, packDirs: packDirs, threads: 1),
    );
  });

  tearDownAll(() async {
    await dir.delete(recursive: true);
  });

  testWidgets('the bundled packs are copied out of the asset bundle', (tester) async {
    expect(packDirs, hasLength(AssetPacks.files.length));
    for (final packDir in packDirs) {
      expect(File('$packDir/pack.toml').existsSync(), isTrue);
      expect(File('$packDir/records.jsonl').lengthSync(), greaterThan(0));
    }
    expect(sdkVersion(), isNotEmpty);
  });

  testWidgets("'kural 1' is answered by lookup with the thirukkural card", (tester) async {
    expect(app.hasModel(), isFalse);
    final events = await (await app.ask(
      question: 'kural 1',
      options: const AskOptions(),
      task: AnswerTask(),
    ))
        .toList();

    expect(events.first.kind, AskEventKind.routed);
    expect(events.first.route, 'lookup');
    final cards = [for (final e in events) if (e.kind == AskEventKind.card) e.card!];
    expect(cards, hasLength(1));
    expect(cards.single.pack, 'thirukkural');
    expect(cards.single.id, 'kural-1');
    expect(cards.single.body, contains('அகர முதல'));
    expect(cards.single.licence, isNotEmpty);
    expect(events.last.kind, AskEventKind.done);
    final summary = events.last.summary!;
    expect(summary.route, 'lookup');
    expect(summary.cards, 1);
    expect(summary.modelUnavailable, isFalse);
    expect(events.where((e) => e.kind == AskEventKind.token), isEmpty);
  });

  testWidgets('the app service streams the same answer in a conversation', (tester) async {
    // Its own data directory: one VazhiApp per directory.
    final assistant = await VazhiAssistant.open(
      VazhiAppConfig(dataDir: '${dir.path}/service', packDirs: packDirs, threads: 1),
    );
    final events = await assistant.ask('குறள் 2').events.toList();
    expect(events.last.summary?.route, 'lookup');
    expect(events.firstWhere((e) => e.kind == AskEventKind.card).card?.id, 'kural-2');
  });

  testWidgets('a blank question throws invalidInput', (tester) async {
    await expectLater(
      app.ask(question: '   ', options: const AskOptions(), task: AnswerTask()),
      throwsVazhi(VazhiErrorCode.invalidInput),
    );
  });

  testWidgets('search and lookup work with no model', (tester) async {
    final knowledge = await KnowledgeBase.open(dataDir: dir.path);
    final packs = await knowledge.packs();
    expect(packs.map((p) => p.name), containsAll(<String>['thirukkural', 'helplines']));

    final hits = await knowledge.search(query: 'letters', limit: 5, pack: 'thirukkural');
    expect(hits, isNotEmpty);
    expect(hits.every((h) => h.card.pack == 'thirukkural'), isTrue);

    final card = await knowledge.lookup(pack: 'thirukkural', key: 'குறள் ௧');
    expect(card?.id, 'kural-1', reason: 'native digits are normalised');
    expect(await knowledge.lookup(pack: 'thirukkural', key: 'no such key'), isNull);
  });

  testWidgets('downloads fail with offline when offline', (tester) async {
    final manager = await ModelManager.open(
      config: ModelManagerConfig(dataDir: dir.path, offline: true),
    );
    expect(manager.isOffline(), isTrue);
    final id = manager.catalog().first.id;
    Future<void> download() async {
      final events = await manager.download(id: id, task: DownloadTask());
      await events.drain<void>();
    }

    await expectLater(download(), throwsVazhi(VazhiErrorCode.offline));
    expect((await manager.status(id: id)).state, ModelState.absent);
  });

  testWidgets('feedback is recorded and listed with keys from Dart', (tester) async {
    final keys = MemoryKeys();
    Future<FeedbackStore> open(MemoryKeys keys, {bool fresh = false}) => FeedbackStore.open(
          dataDir: dir.path,
          fresh: fresh,
          getKey: keys.get,
          createKey: keys.create,
          deleteKey: keys.delete,
        );

    final store = await open(keys);
    final id = await store.record(
      feedback: const FeedbackInput(
        question: 'குறள் 1',
        route: 'lookup',
        answer: '',
        cardIds: ['thirukkural/kural-1'],
        rating: Rating.down,
        correction: 'திருத்தம்',
        packVersions: {'thirukkural': '1.0.0'},
      ),
    );
    expect(id, isNotEmpty);
    expect(await store.count(), 1);
    final listing = await store.list();
    expect(listing.unreadable, isEmpty);
    final record = listing.records.single;
    expect(record.question, 'குறள் 1');
    expect(record.rating, Rating.down);
    expect(record.correction, 'திருத்தம்');
    expect(record.packVersions, {'thirukkural': '1.0.0'});
    expect(keys.keys, isNotEmpty);
    store.dispose();

    // Without its key (a restore to a new phone) the store refuses to open, changing nothing;
    // opened fresh it starts empty.
    await expectLater(open(MemoryKeys()), throwsVazhi(VazhiErrorCode.keyUnavailable));
    final fresh = await open(MemoryKeys(), fresh: true);
    expect(await fresh.count(), 0);
  });
}
