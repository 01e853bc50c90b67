// Builds an AppState over the fakes and pumps a screen inside a localized MaterialApp.

import 'package:flutter/material.dart';
import 'package:flutter_test/flutter_test.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/settings_store.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/app_state.dart';
import 'package:vazhi_example/src/state/history_store.dart';

import 'fakes.dart';

/// The fakes behind one test's [AppState].
class TestApp {
  /// Fakes with [catalog] as the model catalog.
  TestApp({List<CatalogModel> catalog = const []})
      : assistant = FakeAssistant(),
        models = FakeModels(catalog),
        knowledge = FakeKnowledge(),
        feedback = FakeFeedback() {
    state = AppState(
      dataDir: '/nonexistent/vazhi-test',
      assistant: assistant,
      models: models,
      knowledge: knowledge,
      feedback: feedback,
      history: HistoryStore.memory(),
      settings: SettingsStore.memory(),
    );
  }

  /// The assistant fake.
  final FakeAssistant assistant;

  /// The model manager fake.
  final FakeModels models;

  /// The knowledge base fake.
  final FakeKnowledge knowledge;

  /// The feedback store fake.
  final FakeFeedback feedback;

  /// The state the screens see.
  late final AppState state;

  /// Pumps [screen] with this state, in [locale].
  Future<void> pump(WidgetTester tester, Widget screen, {Locale locale = const Locale('en')}) =>
      tester.pumpWidget(AppScope(
        state: state,
        child: MaterialApp(
          locale: locale,
          localizationsDelegates: AppLocalizations.localizationsDelegates,
          supportedLocales: AppLocalizations.supportedLocales,
          home: screen,
        ),
      ));
}

/// English strings, for finders.
final en = lookupAppLocalizations(const Locale('en'));

/// Tamil strings, for finders.
final ta = lookupAppLocalizations(const Locale('ta'));
