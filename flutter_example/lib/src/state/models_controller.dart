// The models screen's state: each catalog model's status, whether it fits, and its download
// in flight (kept here, not in the widget, so a download goes on while the user is elsewhere).

import 'dart:async';

import 'package:flutter/foundation.dart';
import 'package:vazhi_example/src/services/model_service.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';

/// One catalog model and what is known about it on this device.
class ModelEntry {
  /// The entry for [model].
  ModelEntry(this.model);

  /// The catalog entry.
  final CatalogModel model;

  /// Where it stands (`null` until first checked).
  ModelStatus? status;

  /// Whether it fits this device (`null` until checked).
  bool? fits;

  /// Why it does not fit (the core's text, English) or why the check failed.
  Object? fitError;

  /// The latest progress of the download in flight.
  DownloadProgress? progress;

  /// The last action's failure (download, verify, remove), shown on the tile.
  Object? error;

  /// A verify, remove or discard is running.
  bool busy = false;

  DownloadHandle? _download;
  StreamSubscription<DownloadEvent>? _subscription;

  /// Whether a download is in flight.
  bool get downloading => _download != null;

  /// The share downloaded, 0..1 (from the live progress, else the partial file).
  double? get fraction {
    final progress = this.progress;
    if (progress != null && progress.total > 0) return progress.bytes / progress.total;
    final partial = status?.partialBytes;
    if (partial != null && model.size > 0) return partial / model.size;
    return null;
  }
}

/// The catalog's models and their downloads.
class ModelsController extends ChangeNotifier {
  /// A controller over [service].
  ModelsController(this._service)
      : entries = [for (final model in _service.catalog()) ModelEntry(model)];

  final ModelService _service;

  /// One entry per catalog model, in catalog order.
  final List<ModelEntry> entries;

  /// Whether downloads are switched off.
  bool get offline => _service.isOffline;

  /// The entry of model [id], if the catalog has it.
  ModelEntry? entry(String id) {
    for (final entry in entries) {
      if (entry.model.id == id) return entry;
    }
    return null;
  }

  /// Checks every model's status and fit.
  Future<void> refreshAll() => Future.wait(entries.map(refresh));

  /// Checks [entry]'s status and whether it fits.
  Future<void> refresh(ModelEntry entry) async {
    try {
      entry.status = await _service.status(entry.model.id);
    } on Object catch (error) {
      entry.error = error;
      debugPrint('model status failed, code=${_code(error)}');
    }
    try {
      await _service.checkFits(entry.model.id);
      entry
        ..fits = true
        ..fitError = null;
    } on Object catch (error) {
      entry
        ..fits = false
        ..fitError = error;
    }
    notifyListeners();
  }

  /// Starts or resumes downloading [entry] (resuming is downloading again).
  void download(ModelEntry entry) {
    if (entry.downloading) return;
    final handle = _service.download(entry.model.id);
    entry
      ..error = null
      ..progress = null
      .._download = handle;
    entry._subscription = handle.events.listen(
      (event) => _onEvent(entry, event),
      onError: (Object error, StackTrace _) {
        entry.error = error;
        debugPrint('download failed, model=${entry.model.id}, code=${_code(error)}');
        notifyListeners();
      },
      onDone: () {
        entry
          .._download = null
          .._subscription = null
          ..progress = null;
        notifyListeners();
        unawaited(refresh(entry));
      },
    );
    notifyListeners();
  }

  /// Pauses [entry]'s download, keeping the partial file.
  void pause(ModelEntry entry) => entry._download?.pause();

  /// Cancels [entry]'s download, or discards its paused partial file.
  Future<void> cancel(ModelEntry entry) async {
    final download = entry._download;
    if (download != null) {
      download.cancel();
      return;
    }
    await _run(entry, () => _service.discardPartial(entry.model.id));
  }

  /// Re-hashes [entry]'s installed file against the catalog.
  Future<void> verify(ModelEntry entry) =>
      _run(entry, () => _service.verify(entry.model.id));

  /// Removes [entry]'s file (the caller unloads it first if it is loaded).
  Future<void> remove(ModelEntry entry) =>
      _run(entry, () => _service.remove(entry.model.id));

  /// Cancels every download in flight (before models are removed).
  void cancelAll() {
    for (final entry in entries) {
      entry._download?.cancel();
    }
  }

  /// The offline switch changed elsewhere (settings): redraw.
  void offlineChanged() => notifyListeners();

  Future<void> _run(ModelEntry entry, Future<Object?> Function() action) async {
    entry
      ..busy = true
      ..error = null;
    notifyListeners();
    try {
      await action();
    } on Object catch (error) {
      entry.error = error;
      debugPrint('model action failed, model=${entry.model.id}, code=${_code(error)}');
    }
    entry.busy = false;
    await refresh(entry);
  }

  void _onEvent(ModelEntry entry, DownloadEvent event) {
    switch (event.kind) {
      case DownloadEventKind.progress:
        entry.progress = event.progress;
      case DownloadEventKind.installed:
      case DownloadEventKind.paused:
      case DownloadEventKind.cancelled:
        entry.progress = null;
        debugPrint('download ended, model=${entry.model.id}, outcome=${event.kind.name}');
    }
    notifyListeners();
  }

  @override
  void dispose() {
    for (final entry in entries) {
      unawaited(entry._subscription?.cancel());
    }
    super.dispose();
  }
}

String _code(Object error) =>
    error is VazhiException ? error.code.name : error.runtimeType.toString();
