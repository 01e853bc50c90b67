// Rating an answer: thumbs up records at once; thumbs down opens the correction box, and the
// correction is recorded with the rating, question, route, card ids and pack versions.

import 'package:flutter/material.dart';
import 'package:flutter_test/flutter_test.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/ui/chat/chat_screen.dart';

import 'support/fakes.dart';
import 'support/harness.dart';

/// Lets dialogs and snackbars finish animating (pumpAndSettle would wait on the cursor).
Future<void> settle(WidgetTester tester) async {
  await tester.pump();
  await tester.pump(const Duration(seconds: 1));
}

void main() {
  testWidgets('thumbs up and down with a correction go to the feedback service', (tester) async {
    final app = TestApp();
    await app.pump(tester, const ChatScreen());
    await tester.enterText(find.byType(TextField), 'குறள் 1');
    await tester.tap(find.byTooltip(en.send));
    await tester.pump();
    app.assistant.current
      ..add(Answers.routed('lookup'))
      ..add(Answers.card(kural1))
      ..add(Answers.done(route: 'lookup', cards: 1));
    await app.assistant.current.close();
    await tester.pump();

    await tester.tap(find.byTooltip(en.rateUp));
    await settle(tester);
    expect(app.feedback.recorded, hasLength(1));
    final up = app.feedback.recorded.single;
    expect(up.rating, Rating.up);
    expect(up.correction, isNull);
    expect(up.question, 'குறள் 1');
    expect(up.route, 'lookup');
    expect(up.cardIds, ['thirukkural/kural-1']);
    expect(up.packVersions, {'thirukkural': '1.0.0'});
    expect(up.modelId, isNull, reason: 'the model did not speak');
    expect(find.text(en.feedbackSaved), findsOneWidget);

    await tester.tap(find.byTooltip(en.rateDown));
    await settle(tester);
    expect(find.text(en.correctionTitle), findsOneWidget);
    await tester.enterText(
      find.descendant(of: find.byType(AlertDialog), matching: find.byType(TextField)),
      'It praises God as the first of all, as A is the first letter.',
    );
    await tester.tap(find.text(en.save));
    await settle(tester);

    expect(app.feedback.recorded, hasLength(2));
    final down = app.feedback.recorded.last;
    expect(down.rating, Rating.down);
    expect(down.correction, 'It praises God as the first of all, as A is the first letter.');
    expect(down.question, 'குறள் 1');
    expect(find.text(en.correctionTitle), findsNothing);
  });

  testWidgets('cancelling the correction box records nothing', (tester) async {
    final app = TestApp();
    await app.pump(tester, const ChatScreen());
    await tester.enterText(find.byType(TextField), 'helplines');
    await tester.tap(find.byTooltip(en.send));
    await tester.pump();
    app.assistant.current
      ..add(Answers.routed('lookup'))
      ..add(Answers.card(kural1))
      ..add(Answers.done(route: 'lookup', cards: 1));
    await app.assistant.current.close();
    await tester.pump();

    await tester.tap(find.byTooltip(en.rateDown));
    await settle(tester);
    await tester.tap(find.text(en.cancel));
    await settle(tester);
    expect(app.feedback.recorded, isEmpty);
  });
}
