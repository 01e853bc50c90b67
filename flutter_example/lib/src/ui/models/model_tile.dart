// One catalog model: name, quant, size, licence, whether it fits this device, its status
// (absent / partial % / installed + verified with its SHA-256 prefix / unverified), live
// download progress, and its actions: download, pause, resume, cancel, verify, remove, load.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_scope.dart';
import 'package:vazhi_example/src/state/models_controller.dart';
import 'package:vazhi_example/src/ui/common/error_messages.dart';
import 'package:vazhi_example/src/ui/common/formatting.dart';
import 'package:vazhi_example/src/ui/models/download_progress_view.dart';

/// One model's card on the models screen.
class ModelTile extends StatefulWidget {
  /// The card for [entry].
  const ModelTile({super.key, required this.entry});

  /// The model and its state.
  final ModelEntry entry;

  @override
  State<ModelTile> createState() => _ModelTileState();
}

class _ModelTileState extends State<ModelTile> {
  bool _loading = false;

  Future<void> _load(String? sha256) async {
    final l = AppLocalizations.of(context);
    final messenger = ScaffoldMessenger.of(context);
    final state = AppScope.read(context);
    final model = widget.entry.model;
    setState(() => _loading = true);
    try {
      await state.switchModel(model.id, sha256: sha256);
      messenger.showSnackBar(SnackBar(content: Text(l.modelLoaded(model.name))));
    } on Object catch (error) {
      messenger.showSnackBar(SnackBar(content: Text(errorMessage(l, error))));
    } finally {
      if (mounted) setState(() => _loading = false);
    }
  }

  Future<void> _remove() async {
    final l = AppLocalizations.of(context);
    final state = AppScope.read(context);
    final confirmed = await showDialog<bool>(
      context: context,
      builder: (context) => AlertDialog(
        title: Text(l.removeModelTitle(widget.entry.model.name)),
        content: Text(l.removeModelBody),
        actions: [
          TextButton(onPressed: () => Navigator.of(context).pop(false), child: Text(l.cancel)),
          FilledButton(onPressed: () => Navigator.of(context).pop(true), child: Text(l.remove)),
        ],
      ),
    );
    if (confirmed ?? false) await state.removeModel(widget.entry);
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final theme = Theme.of(context);
    final state = AppScope.of(context);
    final downloads = state.downloads;
    final entry = widget.entry;
    final model = entry.model;
    final status = entry.status;
    final offline = downloads.offline;
    final loaded = state.assistant.modelId == model.id;
    final idle = !entry.downloading && !entry.busy && !_loading;
    final small = theme.textTheme.bodySmall;

    final buttons = <Widget>[
      if (entry.downloading) ...[
        OutlinedButton.icon(
          onPressed: () => downloads.pause(entry),
          icon: const Icon(Icons.pause),
          label: Text(l.pause),
        ),
        TextButton.icon(
          onPressed: () => downloads.cancel(entry),
          icon: const Icon(Icons.close),
          label: Text(l.cancelDownload),
        ),
      ] else if (status?.state == ModelState.absent)
        FilledButton.icon(
          onPressed: idle && !offline && entry.fits != false ? () => downloads.download(entry) : null,
          icon: const Icon(Icons.download),
          label: Text(l.download),
        )
      else if (status?.state == ModelState.partial) ...[
        FilledButton.icon(
          onPressed: idle && !offline ? () => downloads.download(entry) : null,
          icon: const Icon(Icons.play_arrow),
          label: Text(l.resume),
        ),
        TextButton.icon(
          onPressed: idle ? () => downloads.cancel(entry) : null,
          icon: const Icon(Icons.delete_outline),
          label: Text(l.discardPartial),
        ),
      ] else if (status != null) ...[
        if (status.state == ModelState.installed && !loaded)
          FilledButton.icon(
            onPressed: idle ? () => _load(status.installed?.sha256) : null,
            icon: const Icon(Icons.memory),
            label: Text(l.loadModel),
          ),
        OutlinedButton.icon(
          onPressed: idle ? () => downloads.verify(entry) : null,
          icon: const Icon(Icons.verified_outlined),
          label: Text(l.verify),
        ),
        TextButton.icon(
          onPressed: idle ? _remove : null,
          icon: const Icon(Icons.delete_outline),
          label: Text(l.remove),
        ),
      ],
    ];

    return Card(
      child: Padding(
        padding: const EdgeInsets.all(12),
        child: Column(
          crossAxisAlignment: CrossAxisAlignment.start,
          children: [
            Text(model.name, style: theme.textTheme.titleMedium),
            Text(
              l.modelFacts(model.quant, formatMegabytes(l, model.size), model.licence),
              style: small,
            ),
            const SizedBox(height: 4),
            _FitLine(entry: entry),
            Text(_statusText(l, entry), style: theme.textTheme.bodyMedium),
            if (loaded) Text(l.modelIsLoaded, style: TextStyle(color: theme.colorScheme.primary)),
            if (entry.downloading) ...[
              const SizedBox(height: 8),
              DownloadProgressView(modelName: model.name, progress: entry.progress),
            ],
            if (entry.error != null)
              Text(errorMessage(l, entry.error), style: TextStyle(color: theme.colorScheme.error)),
            if (offline && !entry.downloading && status?.state != ModelState.installed)
              Text(l.downloadsDisabledOffline, style: small),
            const SizedBox(height: 8),
            Wrap(spacing: 8, runSpacing: 4, children: buttons),
          ],
        ),
      ),
    );
  }
}

String _statusText(AppLocalizations l, ModelEntry entry) {
  final status = entry.status;
  if (status == null) return l.statusChecking;
  return switch (status.state) {
    ModelState.absent => l.statusAbsent,
    ModelState.partial => l.statusPartial(formatPercent(l, entry.fraction ?? 0)),
    ModelState.installed => l.statusInstalled(_shaPrefix(status.installed?.sha256 ?? entry.model.sha256)),
    ModelState.unverified => l.statusUnverified,
  };
}

String _shaPrefix(String sha256) => sha256.length > 12 ? sha256.substring(0, 12) : sha256;

/// Whether the model fits this device, and why not.
class _FitLine extends StatelessWidget {
  const _FitLine({required this.entry});

  final ModelEntry entry;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final theme = Theme.of(context);
    final fitError = entry.fitError;
    return switch (entry.fits) {
      null => Text(l.fitChecking, style: theme.textTheme.bodySmall),
      true => Row(children: [
          const Icon(Icons.check_circle_outline, size: 16),
          const SizedBox(width: 4),
          Text(l.fitsDevice),
        ]),
      false => Row(
          crossAxisAlignment: CrossAxisAlignment.start,
          children: [
            Icon(Icons.warning_amber, size: 16, color: theme.colorScheme.error),
            const SizedBox(width: 4),
            Expanded(
              child: Text(
                fitError is VazhiException &&
                        fitError.code == VazhiErrorCode.insufficientResources
                    ? l.doesNotFit(fitError.detail)
                    : errorMessage(l, fitError),
              ),
            ),
          ],
        ),
    };
  }
}
