// The models screen over a fake model manager: catalog facts, fit, live progress from the
// DownloadEvent stream, pause → partial → resume, offline mode, and loading an installed model.

import 'package:flutter/material.dart';
import 'package:flutter_test/flutter_test.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/ui/models/models_screen.dart';

import 'support/harness.dart';

const smol = CatalogModel(
  id: 'smollm2-135m-instruct-q4_1',
  name: 'SmolLM2 135M Instruct (Q4_1)',
  size: 100000000,
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  quant: 'Q4_1',
  arch: 'llama',
  contextLength: 8192,
  minRamMb: 512,
  licence: 'Apache-2.0',
);

const gemma = CatalogModel(
  id: 'gemma3-270m-q4_k_m',
  name: 'Gemma 3 270M (Q4_K_M, base)',
  size: 253113024,
  sha256: 'a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818',
  quant: 'Q4_K_M',
  arch: 'gemma3',
  contextLength: 32768,
  minRamMb: 768,
  licence: 'Gemma Terms of Use',
);

DownloadEvent progress(int bytes, {double eta = 37.5}) => DownloadEvent(
      kind: DownloadEventKind.progress,
      progress: DownloadProgress(
        id: smol.id,
        phase: DownloadPhase.downloading,
        bytes: bytes,
        total: smol.size,
        bytesPerSecond: 2000000,
        etaSeconds: eta,
      ),
    );

void main() {
  testWidgets('download progress, pause, then resume', (tester) async {
    final app = TestApp(catalog: [smol, gemma]);
    app.models.tooBig[gemma.id] = 'needs 768 MiB of RAM';
    await app.pump(tester, const ModelsScreen());
    await tester.pump();

    expect(find.text(smol.name), findsOneWidget);
    expect(find.text(en.modelFacts('Q4_1', '100.0 MB', 'Apache-2.0')), findsOneWidget);
    expect(find.text(en.fitsDevice), findsOneWidget);
    expect(find.text(en.doesNotFit('needs 768 MiB of RAM')), findsOneWidget);
    expect(find.text(en.statusAbsent), findsNWidgets(2));

    await tester.tap(find.text(en.download).first);
    await tester.pump();
    expect(app.models.calls, ['download:${smol.id}']);
    expect(find.text(en.pause), findsOneWidget);
    expect(find.text(en.cancelDownload), findsOneWidget);

    final events = app.models.downloads.single..add(progress(25000000));
    await tester.pump();
    final bar = tester.widget<LinearProgressIndicator>(find.byType(LinearProgressIndicator));
    expect(bar.value, closeTo(0.25, 1e-9));
    expect(bar.semanticsValue, '25%');
    expect(bar.semanticsLabel, en.downloadProgressLabel(smol.name));
    expect(find.textContaining(en.bytesOfTotal('25.0 MB', '100.0 MB')), findsOneWidget);
    expect(find.textContaining(en.speedMegabytesPerSecond('2.0')), findsOneWidget);
    expect(find.textContaining(en.etaSeconds(38)), findsOneWidget);

    events.add(progress(50000000, eta: 25));
    await tester.pump();
    expect(
      tester.widget<LinearProgressIndicator>(find.byType(LinearProgressIndicator)).value,
      closeTo(0.5, 1e-9),
    );

    await tester.tap(find.text(en.pause));
    expect(app.models.calls.last, 'pause');
    app.models.statuses[smol.id] =
        const ModelStatus(state: ModelState.partial, partialBytes: 50000000);
    events.add(const DownloadEvent(kind: DownloadEventKind.paused, bytes: 50000000));
    await events.close();
    await tester.pump();
    await tester.pump();

    expect(find.byType(LinearProgressIndicator), findsNothing);
    expect(find.text(en.statusPartial('50%')), findsOneWidget);
    expect(find.text(en.resume), findsOneWidget);
    expect(find.text(en.discardPartial), findsOneWidget);

    await tester.tap(find.text(en.resume));
    await tester.pump();
    expect(app.models.calls.where((c) => c.startsWith('download:')), hasLength(2));
    expect(find.text(en.pause), findsOneWidget);
  });

  testWidgets('a failed download shows its localized message', (tester) async {
    final app = TestApp(catalog: [smol]);
    await app.pump(tester, const ModelsScreen());
    await tester.pump();
    await tester.tap(find.text(en.download));
    await tester.pump();
    app.models.downloads.single
        .addError(const VazhiException(code: VazhiErrorCode.verification, detail: 'sha256'));
    await app.models.downloads.single.close();
    await tester.pump();
    await tester.pump();
    expect(find.text(en.errorVerification), findsOneWidget);
    expect(find.text(en.download), findsOneWidget);
  });

  testWidgets('offline mode disables downloads', (tester) async {
    final app = TestApp(catalog: [smol]);
    app.models.isOffline = true;
    await app.pump(tester, const ModelsScreen());
    await tester.pump();
    expect(find.text(en.offlineBanner), findsOneWidget);
    expect(find.text(en.downloadsDisabledOffline), findsOneWidget);
    await tester.tap(find.text(en.download));
    await tester.pump();
    expect(app.models.calls, isEmpty);
  });

  testWidgets('an installed model shows its hash and can be loaded', (tester) async {
    final app = TestApp(catalog: [smol]);
    // Not const: a const object's fields are not constant expressions.
    app.models.statuses[smol.id] = ModelStatus(
      state: ModelState.installed,
      installed: InstalledModel(
        id: smol.id,
        path: '/data/models/smol.gguf',
        sha256: smol.sha256,
        size: smol.size,
      ),
    );
    await app.pump(tester, const ModelsScreen());
    await tester.pump();
    expect(find.text(en.statusInstalled('b179c9523d0e')), findsOneWidget);

    await tester.tap(find.text(en.loadModel));
    await tester.pump();
    await tester.pump();
    expect(app.assistant.modelId, smol.id);
    expect(app.assistant.modelSha256, smol.sha256);
    expect(find.text(en.modelIsLoaded), findsOneWidget);
    expect(find.text(en.loadModel), findsNothing);

    await tester.tap(find.text(en.verify));
    await tester.pump();
    await tester.pump();
    expect(app.models.calls, contains('verify:${smol.id}'));
  });
}
