// Hands the AppState down the widget tree; widgets that read it rebuild when it notifies.

import 'package:flutter/widgets.dart';
import 'package:vazhi_example/src/state/app_state.dart';

/// Provides [AppState] to the widgets below (null while the app is still opening).
class AppScope extends InheritedNotifier<AppState> {
  /// Provides [state] to [child].
  const AppScope({super.key, required AppState? state, required super.child})
      : super(notifier: state);

  /// The state, and a rebuild of [context] whenever it notifies.
  static AppState of(BuildContext context) {
    final state = context.dependOnInheritedWidgetOfExactType<AppScope>()?.notifier;
    assert(state != null, 'AppScope.of called outside an open app');
    return state!;
  }

  /// The state, without rebuilding (for callbacks).
  static AppState read(BuildContext context) {
    final state = context.getInheritedWidgetOfExactType<AppScope>()?.notifier;
    assert(state != null, 'AppScope.read called outside an open app');
    return state!;
  }
}
