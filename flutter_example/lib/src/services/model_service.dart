// The model catalog and downloads as the UI sees them. The app's implementation is VazhiModels
// (over the native ModelManager); widget tests pass a fake.

import 'package:vazhi_example/src/services/vazhi_types.dart';

/// One download in flight: its events, and pause/cancel.
class DownloadHandle {
  /// Wraps [events] and the task's controls.
  DownloadHandle({
    required this.events,
    required void Function() onPause,
    required void Function() onCancel,
  })  : _onPause = onPause,
        _onCancel = onCancel;

  /// Progress events, then one last event (`installed`, `paused` or `cancelled`); a failure
  /// ends the stream with a [VazhiException].
  final Stream<DownloadEvent> events;

  final void Function() _onPause;
  final void Function() _onCancel;

  /// Stops and keeps the partial file (downloading again resumes).
  void pause() => _onPause();

  /// Stops and deletes the partial file.
  void cancel() => _onCancel();
}

/// What the app needs from Vazhi's model manager.
abstract class ModelService {
  /// The catalog's models.
  List<CatalogModel> catalog();

  /// Where model [id] stands on this device.
  Future<ModelStatus> status(String id);

  /// Completes if model [id] fits this device; throws a [VazhiException]
  /// (`insufficientResources`) saying why not.
  Future<void> checkFits(String id);

  /// Whether downloads are switched off.
  bool get isOffline;

  /// Switches downloads off (no socket is opened) or on.
  Future<void> setOffline(bool offline);

  /// Starts, or resumes, downloading model [id].
  DownloadHandle download(String id);

  /// Deletes a paused partial download; `true` if there was one.
  Future<bool> discardPartial(String id);

  /// Removes model [id] and any partial download; `true` if anything was removed.
  Future<bool> remove(String id);

  /// Re-hashes installed model [id]; a mismatch quarantines it (throws `verification`).
  Future<InstalledModel> verify(String id);
}
