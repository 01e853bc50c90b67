// Ratings and corrections as the UI sees them. The app's implementation is VazhiFeedback (over
// the native, encrypted FeedbackStore); widget tests pass a fake.

import 'package:vazhi_example/src/services/vazhi_types.dart';

/// What the app needs from Vazhi's encrypted feedback store.
abstract class FeedbackService {
  /// Records one rating (question, answer, card ids and correction are encrypted at rest);
  /// returns its record id.
  Future<String> record(FeedbackInput feedback);

  /// Records in the store.
  Future<int> count();

  /// Writes the readable records, decrypted, as JSON lines to [path].
  Future<FeedbackExport> exportTo(String path);

  /// Deletes every record; returns how many.
  Future<int> purgeAll();
}
