// Friendly, localized messages for failures: one for every VazhiErrorCode, one for anything
// else. The exception's detail (English, for developers) is never the message.

import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_state.dart';

/// The message for [error] (a [VazhiException] by its code; anything else generically).
String errorMessage(AppLocalizations l, Object? error) => switch (error) {
      VazhiException(:final code) => errorCodeMessage(l, code),
      FeedbackUnavailable() => l.feedbackUnavailable,
      _ => l.errorUnexpected,
    };

/// The message for [code].
String errorCodeMessage(AppLocalizations l, VazhiErrorCode code) => switch (code) {
      VazhiErrorCode.invalidInput => l.errorInvalidInput,
      VazhiErrorCode.modelNotFound => l.errorModelNotFound,
      VazhiErrorCode.modelRefused => l.errorModelRefused,
      VazhiErrorCode.outOfMemory => l.errorOutOfMemory,
      VazhiErrorCode.generation => l.errorGeneration,
      VazhiErrorCode.modelUnloaded => l.errorModelUnloaded,
      VazhiErrorCode.busy => l.errorBusy,
      VazhiErrorCode.knowledge => l.errorKnowledge,
      VazhiErrorCode.offline => l.errorOffline,
      VazhiErrorCode.download => l.errorDownload,
      VazhiErrorCode.verification => l.errorVerification,
      VazhiErrorCode.insufficientResources => l.errorInsufficientResources,
      VazhiErrorCode.keyUnavailable => l.errorKeyUnavailable,
      VazhiErrorCode.dataDamaged => l.errorDataDamaged,
      VazhiErrorCode.io => l.errorIo,
      VazhiErrorCode.internal => l.errorInternal,
    };
