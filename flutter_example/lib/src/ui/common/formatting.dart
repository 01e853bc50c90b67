// Sizes, speeds, durations and dates in the user's language.

import 'package:intl/intl.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';

String _decimal(AppLocalizations l, double value) =>
    NumberFormat('#,##0.0', l.localeName).format(value);

/// [bytes] in megabytes (10⁶ bytes), e.g. "98.4 MB".
String formatMegabytes(AppLocalizations l, int bytes) =>
    l.sizeMegabytes(_decimal(l, bytes / 1e6));

/// A download speed, e.g. "1.2 MB/s".
String formatSpeed(AppLocalizations l, double bytesPerSecond) =>
    l.speedMegabytesPerSecond(_decimal(l, bytesPerSecond / 1e6));

/// Time left, e.g. "about 1 min 20 s left".
String formatEta(AppLocalizations l, double seconds) {
  final total = seconds.isFinite ? seconds.round() : 0;
  if (total < 60) return l.etaSeconds(total);
  final minutes = total ~/ 60;
  if (minutes < 60) return l.etaMinutes(minutes, total % 60);
  return l.etaHours(minutes ~/ 60, minutes % 60);
}

/// A share as a whole percentage, e.g. "42%".
String formatPercent(AppLocalizations l, double fraction) =>
    NumberFormat.percentPattern(l.localeName).format(fraction.clamp(0.0, 1.0));

/// A date and time, e.g. "12 Mar 2025, 4:05 PM".
String formatDateTime(AppLocalizations l, DateTime time) =>
    DateFormat.yMMMd(l.localeName).add_jm().format(time);
