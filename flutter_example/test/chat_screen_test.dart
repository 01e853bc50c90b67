// The chat screen over a fake assistant: tokens stream into the answer in order, the source
// badge follows the events, cards show their pack, source and licence, the stop button
// cancels, a missing model is explained, and failures show their localized message.

import 'package:flutter/material.dart';
import 'package:flutter_test/flutter_test.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/ui/chat/chat_screen.dart';

import 'support/fakes.dart';
import 'support/harness.dart';

Future<void> ask(WidgetTester tester, String question) async {
  await tester.enterText(find.byType(TextField), question);
  await tester.tap(find.byTooltip(en.send));
  await tester.pump();
}

void main() {
  testWidgets('streams tokens in order, with the source badge and the card licence',
      (tester) async {
    final app = TestApp();
    await app.pump(tester, const ChatScreen());

    await ask(tester, 'explain kural 1');
    expect(app.assistant.questions, ['explain kural 1']);
    expect(find.text(en.answerWaiting), findsOneWidget);
    expect(find.byTooltip(en.stop), findsOneWidget);

    final answer = app.assistant.current
      ..add(Answers.routed('hybrid'))
      ..add(Answers.card(kural1));
    await tester.pump();
    expect(find.text(kural1.title), findsOneWidget);
    expect(find.text(kural1.body), findsOneWidget);
    expect(find.text(en.cardPack(kural1.packTitle, kural1.packVersion)), findsOneWidget);
    expect(find.text(en.cardSource(kural1.source)), findsOneWidget);
    expect(find.text(en.cardLicence(kural1.licence)), findsOneWidget);
    expect(find.text(en.sourceKnowledge), findsOneWidget);

    answer.add(Answers.token('As the letter A '));
    await tester.pump();
    expect(find.text('As the letter A '), findsOneWidget);

    answer.add(Answers.token('leads all letters'));
    await tester.pump();
    expect(find.text('As the letter A leads all letters'), findsOneWidget);
    expect(find.text(en.sourceBoth), findsOneWidget);
    expect(find.text(en.sourceKnowledge), findsNothing);

    answer.add(Answers.done(route: 'hybrid', cards: 1, text: 'As the letter A leads all letters'));
    await answer.close();
    await tester.pump();
    expect(find.text('As the letter A leads all letters'), findsOneWidget);
    expect(find.text(en.sourceBoth), findsOneWidget);
    expect(find.byTooltip(en.stop), findsNothing);
    expect(find.byTooltip(en.send), findsOneWidget);
    expect(find.byTooltip(en.rateUp), findsOneWidget);
    expect(find.byTooltip(en.rateDown), findsOneWidget);
  });

  testWidgets('model text alone is badged as from the model', (tester) async {
    final app = TestApp()..assistant.hasModel = true;
    await app.pump(tester, const ChatScreen());
    await ask(tester, 'What is the capital of France?');
    app.assistant.current
      ..add(Answers.routed('generate'))
      ..add(Answers.token('Paris'))
      ..add(Answers.done(route: 'generate', text: 'Paris'));
    await app.assistant.current.close();
    await tester.pump();
    expect(find.text('Paris'), findsOneWidget);
    expect(find.text(en.sourceModel), findsOneWidget);
  });

  testWidgets('without a model, says what the model would add and links to the models tab',
      (tester) async {
    final app = TestApp();
    await app.pump(tester, const ChatScreen());
    await ask(tester, 'explain kural 1');
    app.assistant.current
      ..add(Answers.routed('hybrid'))
      ..add(Answers.card(kural1))
      ..add(Answers.done(route: 'hybrid', cards: 1, modelUnavailable: true));
    await app.assistant.current.close();
    await tester.pump();

    expect(find.text(en.sourceKnowledge), findsOneWidget);
    expect(find.text(en.modelUnavailableNote), findsOneWidget);
    await tester.tap(find.text(en.getModel));
    await tester.pump();
    expect(app.state.tab, HomeTab.models);
  });

  testWidgets('the stop button cancels the answer', (tester) async {
    final app = TestApp()..assistant.hasModel = true;
    await app.pump(tester, const ChatScreen());
    await ask(tester, 'Write a long story');
    app.assistant.current
      ..add(Answers.routed('generate'))
      ..add(Answers.token('Once'));
    await tester.pump();

    await tester.tap(find.byTooltip(en.stop));
    expect(app.assistant.cancels, 1);

    app.assistant.current.add(const AskEvent(
      kind: AskEventKind.done,
      unsupported: false,
      summary: AnswerSummary(
        route: 'generate',
        cards: 0,
        text: 'Once',
        modelUnavailable: false,
        finish: 'cancelled',
        generatedTokens: 1,
        toolCalls: 0,
        unsupportedSentences: 0,
      ),
    ));
    await app.assistant.current.close();
    await tester.pump();
    expect(find.text(en.answerStopped), findsOneWidget);
    expect(find.byTooltip(en.send), findsOneWidget);
  });

  testWidgets('a failed answer shows the localized message for its code', (tester) async {
    final app = TestApp();
    await app.pump(tester, const ChatScreen(), locale: const Locale('ta'));
    await tester.enterText(find.byType(TextField), 'கதை சொல்');
    await tester.tap(find.byTooltip(ta.send));
    await tester.pump();
    app.assistant.current
      ..add(Answers.routed('generate'))
      ..addError(const VazhiException(code: VazhiErrorCode.modelUnloaded, detail: 'unloaded'));
    await app.assistant.current.close();
    await tester.pump();
    expect(find.text(ta.errorModelUnloaded), findsOneWidget);
    expect(find.text('unloaded'), findsNothing);
  });
}
