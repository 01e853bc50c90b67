// Hands the OS's memory signals to the assistant: a memory warning (iOS) or low-memory
// callback (Android) is `critical`; going to the background is `background`. At or above the
// config's `unloadAt` (default critical) Vazhi frees the model; it is loaded again when the
// app comes back to the foreground.

import 'dart:async';

import 'package:flutter/widgets.dart';
import 'package:vazhi_example/src/services/assistant_service.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';

/// A [WidgetsBindingObserver] forwarding memory pressure to an [AssistantService].
class MemoryPressureHook with WidgetsBindingObserver {
  /// Forwards to [assistant]; call [attach] to start.
  MemoryPressureHook(this.assistant);

  /// The assistant whose model is unloaded under pressure.
  final AssistantService assistant;

  bool _unloaded = false;

  /// Starts listening.
  void attach() => WidgetsBinding.instance.addObserver(this);

  /// Stops listening.
  void detach() => WidgetsBinding.instance.removeObserver(this);

  @override
  void didHaveMemoryPressure() {
    unawaited(_pressure(MemoryPressure.critical));
  }

  @override
  void didChangeAppLifecycleState(AppLifecycleState state) {
    switch (state) {
      case AppLifecycleState.paused:
        unawaited(_pressure(MemoryPressure.background));
      case AppLifecycleState.resumed:
        if (_unloaded) {
          _unloaded = false;
          unawaited(_reload());
        }
      case AppLifecycleState.detached:
      case AppLifecycleState.inactive:
      case AppLifecycleState.hidden:
        break;
    }
  }

  Future<void> _pressure(MemoryPressure level) async {
    try {
      final unloaded = await assistant.onMemoryPressure(level);
      _unloaded = _unloaded || unloaded;
      debugPrint('memory pressure ${level.name}, model unloaded=$unloaded');
    } on Object catch (error) {
      debugPrint('memory pressure not handled (${_code(error)})');
    }
  }

  Future<void> _reload() async {
    try {
      await assistant.reload();
      debugPrint('model reloaded after memory pressure');
    } on Object catch (error) {
      debugPrint('model not reloaded (${_code(error)})');
    }
  }
}

String _code(Object error) =>
    error is VazhiException ? error.code.name : error.runtimeType.toString();
