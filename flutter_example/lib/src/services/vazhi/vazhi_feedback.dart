// FeedbackService over the native FeedbackStore: every field holding user text is encrypted
// with AES-256-GCM under a key kept by SecureKeys (Keystore / Keychain).

import 'package:vazhi_example/src/rust/api/feedback.dart';
import 'package:vazhi_example/src/rust/api/records.dart';
import 'package:vazhi_example/src/services/feedback_service.dart';
import 'package:vazhi_example/src/services/vazhi/secure_keys.dart';

/// The app's [FeedbackService]: the encrypted feedback store of the data directory.
class VazhiFeedback implements FeedbackService {
  /// Wraps an open [FeedbackStore].
  VazhiFeedback(this._store);

  /// Opens the store in [dataDir]. Throws `keyUnavailable` (changing nothing) when its key is
  /// gone; [fresh] then sets the unreadable store aside and starts a new one.
  static Future<VazhiFeedback> open({
    required String dataDir,
    required SecureKeys keys,
    bool fresh = false,
  }) async =>
      VazhiFeedback(
        await FeedbackStore.open(
          dataDir: dataDir,
          fresh: fresh,
          getKey: keys.getKey,
          createKey: keys.createKey,
          deleteKey: keys.deleteKey,
        ),
      );

  final FeedbackStore _store;

  @override
  Future<String> record(FeedbackInput feedback) => _store.record(feedback: feedback);

  @override
  Future<int> count() => _store.count();

  @override
  Future<FeedbackExport> exportTo(String path) => _store.exportTo(path: path);

  @override
  Future<int> purgeAll() => _store.purgeAll();
}
