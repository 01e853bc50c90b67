// Vazhi's Flutter example: an offline assistant that answers exact questions from knowledge
// packs (Thirukkural, Indian helplines) and open questions with a small on-device model once
// one is downloaded.
//
// Start-up: load the Rust library (from the process on iOS), then, behind an opening screen,
// copy the bundled packs into the data directory, open the assistant, models, knowledge base
// and encrypted feedback store (lib/src/app/bootstrap.dart), and hook the OS's memory signals
// up to the assistant.
//
// LOGGING: never log user text (questions, answers, corrections). debugPrint is used only for
// non-user events (e.g. 'answer finished, route=lookup, tokens=12').

import 'dart:io';

import 'package:flutter/material.dart';
import 'package:flutter_rust_bridge/flutter_rust_bridge_for_generated.dart' show ExternalLibrary;
import 'package:vazhi_example/src/app/bootstrap.dart';
import 'package:vazhi_example/src/app/memory_pressure.dart';
import 'package:vazhi_example/src/app/vazhi_example_app.dart';
import 'package:vazhi_example/src/rust/frb_generated.dart';

Future<void> main() async {
  WidgetsFlutterBinding.ensureInitialized();
  // iOS links the bridge statically into the app (an XCFramework, see README.md): its symbols
  // are in the process. Elsewhere flutter_rust_bridge opens libvazhi_flutter by name.
  await RustLib.init(
    externalLibrary: Platform.isIOS ? ExternalLibrary.process(iKnowHowToUseIt: true) : null,
  );
  runApp(VazhiExampleApp(
    open: openApp,
    onOpened: (state) => MemoryPressureHook(state.assistant).attach(),
  ));
}
