// The generated record types, as the rest of the app imports them.
//
// The generated `Card` (a knowledge record) has the same name as Material's `Card` widget, so
// app code imports this file instead of `rust/api/records.dart` and calls it [KnowledgeCard].

import 'package:vazhi_example/src/rust/api/records.dart' as records show Card;

export 'package:vazhi_example/src/rust/api/assistant.dart' show MemoryPressure;
export 'package:vazhi_example/src/rust/api/error.dart' show VazhiErrorCode, VazhiException;
export 'package:vazhi_example/src/rust/api/records.dart' hide Card;

/// A knowledge record as shown to the user, verbatim, with its pack, source and licence
/// (the generated `Card`, renamed so that it does not clash with Material's `Card`).
typedef KnowledgeCard = records.Card;
