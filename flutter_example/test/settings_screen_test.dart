// The settings screen over fakes: the offline switch goes to the model service and is saved;
// clear data purges the ratings and the history after confirmation; about lists the packs.

import 'package:flutter/material.dart';
import 'package:flutter_test/flutter_test.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/chat_turn.dart';
import 'package:vazhi_example/src/state/history_store.dart';
import 'package:vazhi_example/src/ui/settings/settings_screen.dart';

import 'support/harness.dart';

Future<void> settle(WidgetTester tester) async {
  await tester.pump();
  await tester.pump(const Duration(seconds: 1));
}

void main() {
  testWidgets('the offline switch calls the model service and is saved', (tester) async {
    final app = TestApp();
    await app.pump(tester, const SettingsScreen());
    await tester.pump();
    SwitchListTile offlineSwitch() => tester.widget<SwitchListTile>(find.byType(SwitchListTile));
    expect(offlineSwitch().value, isFalse);

    await tester.tap(find.text(en.offlineMode));
    await tester.pump();
    await tester.pump();
    expect(app.models.offlineCalls, [true]);
    expect(app.state.settings.offline, isTrue);
    expect(offlineSwitch().value, isTrue);

    await tester.tap(find.text(en.offlineMode));
    await tester.pump();
    await tester.pump();
    expect(app.models.offlineCalls, [true, false]);
    expect(app.state.settings.offline, isFalse);
  });

  testWidgets('clear data purges the ratings and the history after confirmation',
      (tester) async {
    final app = TestApp();
    app.feedback.recorded.add(const FeedbackInput(
      question: 'குறள் 1',
      route: 'lookup',
      answer: '',
      cardIds: ['thirukkural/kural-1'],
      rating: Rating.up,
      packVersions: {'thirukkural': '1.0.0'},
    ));
    await app.state.history.save(SavedConversation(
      id: 'c1',
      startedAt: DateTime(2025),
      turns: [ChatTurn(question: 'குறள் 1')..phase = AnswerPhase.done],
    ));
    await app.pump(tester, const SettingsScreen());
    await tester.pump();
    expect(find.text(en.feedbackCount(1)), findsOneWidget);

    await tester.tap(find.text(en.clearData));
    await settle(tester);
    expect(find.text(en.clearDataConfirmTitle), findsOneWidget);
    await tester.tap(find.text(en.clearDataConfirm));
    await settle(tester);

    expect(app.feedback.recorded, isEmpty);
    expect(app.state.history.conversations, isEmpty);
    expect(find.text(en.dataCleared(1)), findsOneWidget);
    expect(app.models.calls, isEmpty, reason: 'models are kept unless asked');
  });

  testWidgets('about shows the SDK version and each pack with its licence', (tester) async {
    final app = TestApp();
    await app.pump(tester, const SettingsScreen());
    await tester.pump();
    await tester.scrollUntilVisible(
      find.text(en.aboutSdkVersion('0.0.0-test')),
      100,
      scrollable: find.byType(Scrollable).first,
    );
    expect(find.text(en.aboutSdkVersion('0.0.0-test')), findsOneWidget);
    expect(find.text(en.cardLicence('Public domain (test licence text)')), findsOneWidget);
  });
}
