// About: the Vazhi SDK version, and each installed knowledge pack with its version, source
// and licence.

import 'package:flutter/material.dart';
import 'package:vazhi_example/l10n/gen/app_localizations.dart';
import 'package:vazhi_example/src/services/vazhi_types.dart';
import 'package:vazhi_example/src/state/app_scope.dart';

/// The about part of the settings screen.
class AboutSection extends StatefulWidget {
  /// The section.
  const AboutSection({super.key});

  @override
  State<AboutSection> createState() => _AboutSectionState();
}

class _AboutSectionState extends State<AboutSection> {
  Future<List<PackInfo>>? _packs;

  @override
  void didChangeDependencies() {
    super.didChangeDependencies();
    _packs ??= AppScope.read(context).knowledge.packs();
  }

  @override
  Widget build(BuildContext context) {
    final l = AppLocalizations.of(context);
    final state = AppScope.of(context);
    final small = Theme.of(context).textTheme.bodySmall;
    return Column(
      crossAxisAlignment: CrossAxisAlignment.start,
      children: [
        ListTile(
          leading: const Icon(Icons.info_outline),
          title: Text(l.aboutTitle),
          subtitle: Text(l.aboutSdkVersion(state.assistant.sdkVersion)),
        ),
        FutureBuilder<List<PackInfo>>(
          future: _packs,
          builder: (context, snapshot) {
            final packs = snapshot.data ?? const <PackInfo>[];
            return Column(
              children: [
                for (final pack in packs)
                  ListTile(
                    leading: const Icon(Icons.menu_book_outlined),
                    title: Text(l.aboutPack(pack.title, pack.version, pack.records)),
                    subtitle: Column(
                      crossAxisAlignment: CrossAxisAlignment.start,
                      children: [
                        Text(l.cardSource(pack.source), style: small),
                        Text(l.cardLicence(pack.licence), style: small),
                      ],
                    ),
                  ),
              ],
            );
          },
        ),
      ],
    );
  }
}
