// Every VazhiErrorCode maps to its own localized message, in English and in Tamil; other
// failures get the generic one, and the exception's detail is never shown.

import 'package:flutter/widgets.dart';
import 'package:flutter_test/flutter_test.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';

void main() {
  final en = lookupAppLocalizations(const Locale('en'));
  final ta = lookupAppLocalizations(const Locale('ta'));
  final tamilScript = RegExp('[\u0B80-\u0BFF]');

  for (final l in [en, ta]) {
    test('every code has its own ${l.localeName} message', () {
      final messages = [for (final code in VazhiErrorCode.values) errorCodeMessage(l, code)];
      expect(messages.toSet(), hasLength(VazhiErrorCode.values.length));
      for (final message in messages) {
        expect(message.trim(), isNotEmpty);
      }
    });

    test('${l.localeName}: exceptions by code, anything else generically', () {
      const offline = VazhiException(code: VazhiErrorCode.offline, detail: 'downloads are off');
      expect(errorMessage(l, offline), errorCodeMessage(l, VazhiErrorCode.offline));
      expect(errorMessage(l, offline), isNot(contains('downloads are off')));
      expect(errorMessage(l, StateError('boom')), l.errorUnexpected);
      expect(errorMessage(l, null), l.errorUnexpected);
      expect(errorMessage(l, const FeedbackUnavailable()), l.feedbackUnavailable);
    });
  }

  test('the Tamil messages are Tamil, not English', () {
    for (final code in VazhiErrorCode.values) {
      final message = errorCodeMessage(ta, code);
      expect(message, isNot(errorCodeMessage(en, code)), reason: code.name);
      expect(tamilScript.hasMatch(message), isTrue, reason: code.name);
    }
  });

  test('known messages', () {
    expect(
      errorCodeMessage(en, VazhiErrorCode.offline),
      'Offline mode is on, so nothing was downloaded. Turn it off in Settings.',
    );
    expect(
      errorCodeMessage(ta, VazhiErrorCode.invalidInput),
      'அந்தக் கேள்வி அல்லது அமைப்பு செல்லாது. கேள்வியைத் தட்டச்சு செய்து மீண்டும் முயலுங்கள்.',
    );
  });
}
