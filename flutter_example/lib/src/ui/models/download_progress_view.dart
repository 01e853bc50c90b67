// A download's live progress: a bar (with its value for screen readers), bytes of total, speed
// and time left, and the phase (connecting, retrying, verifying…).

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/ui/common/formatting.dart';

/// Shows one [DownloadProgress] (or a waiting bar before the first report).
class DownloadProgressView extends StatelessWidget {
  /// Progress of the model named [modelName]; [progress] is null before the first report.
  const DownloadProgressView({super.key, required this.modelName, required this.progress});

  /// The model's name (for the bar's label).
  final String modelName;

  /// The latest report.
  final DownloadProgress? progress;

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final progress = this.progress;
    final fraction =
        progress != null && progress.total > 0 ? progress.bytes / progress.total : null;
    final eta = progress?.etaSeconds;
    return Column(
      crossAxisAlignment: CrossAxisAlignment.start,
      children: [
        LinearProgressIndicator(
          value: fraction,
          semanticsLabel: l.downloadProgressLabel(modelName),
          semanticsValue: fraction == null ? l.phaseConnecting : formatPercent(l, fraction),
        ),
        const SizedBox(height: 4),
        if (progress != null)
          Text(
            [
              phaseLabel(l, progress.phase),
              l.bytesOfTotal(formatMegabytes(l, progress.bytes), formatMegabytes(l, progress.total)),
              if (progress.phase == DownloadPhase.downloading) formatSpeed(l, progress.bytesPerSecond),
              if (progress.phase == DownloadPhase.downloading && eta != null) formatEta(l, eta),
            ].join(' · '),
            style: Theme.of(context).textTheme.bodySmall,
          )
        else
          Text(l.phaseConnecting, style: Theme.of(context).textTheme.bodySmall),
      ],
    );
  }
}

/// What a download is doing, in words.
String phaseLabel(AppLocalizations l, DownloadPhase phase) => switch (phase) {
      DownloadPhase.connecting => l.phaseConnecting,
      DownloadPhase.downloading => l.phaseDownloading,
      DownloadPhase.retrying => l.phaseRetrying,
      DownloadPhase.verifying => l.phaseVerifying,
      DownloadPhase.installed => l.phaseInstalled,
    };
