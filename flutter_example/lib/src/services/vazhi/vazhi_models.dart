// ModelService over the native ModelManager: catalog, status, fit checks, resumable downloads
// as Dart streams, verification and removal.

import 'package:vazhi_example/src/rust/api/models.dart';
import 'package:vazhi_example/src/rust/api/records.dart';
import 'package:vazhi_example/src/services/model_service.dart';

/// The app's [ModelService]: one [ModelManager] over the data directory.
class VazhiModels implements ModelService {
  /// Wraps an open [ModelManager].
  VazhiModels(this._manager);

  /// Opens a manager over `config.dataDir` and the catalog built into Vazhi.
  static Future<VazhiModels> open(ModelManagerConfig config) async =>
      VazhiModels(await ModelManager.open(config: config));

  final ModelManager _manager;

  @override
  List<CatalogModel> catalog() => _manager.catalog();

  @override
  Future<ModelStatus> status(String id) => _manager.status(id: id);

  @override
  Future<void> checkFits(String id) => _manager.checkFits(id: id);

  @override
  bool get isOffline => _manager.isOffline();

  @override
  Future<void> setOffline(bool offline) => _manager.setOffline(offline: offline);

  @override
  DownloadHandle download(String id) {
    final task = DownloadTask();
    // Closing the Dart stream (cancelling the subscription) pauses the download in Rust.
    Stream<DownloadEvent> events() async* {
      yield* await _manager.download(id: id, task: task);
    }

    return DownloadHandle(
      events: events(),
      onPause: task.pause,
      onCancel: task.cancel,
    );
  }

  @override
  Future<bool> discardPartial(String id) => _manager.discardPartial(id: id);

  @override
  Future<bool> remove(String id) => _manager.remove(id: id);

  @override
  Future<InstalledModel> verify(String id) => _manager.verify(id: id);

  /// The first catalog model that is installed and verified on this device, if any.
  Future<InstalledModel?> firstInstalled() async {
    for (final model in catalog()) {
      final status = await this.status(model.id);
      final installed = status.installed;
      if (status.state == ModelState.installed && installed != null) {
        return installed;
      }
    }
    return null;
  }
}
