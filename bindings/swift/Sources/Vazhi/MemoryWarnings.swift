// Forwarding iOS memory warnings to Vazhi. Never compiled or run here (no Swift toolchain on the
// machine it was written on): see bindings/swift/README.md.

#if canImport(UIKit) && !os(watchOS)
import UIKit
import VazhiFFI

/// Frees Vazhi's model when iOS warns that memory is low: each
/// `UIApplication.didReceiveMemoryWarningNotification` becomes `onMemoryPressure(level: .critical)`,
/// which unloads the model (the knowledge base keeps answering; `reload()` loads it again). With
/// `reportBackground`, entering the background is reported as `.background`, which unloads only
/// if the Vazhi was configured with `unloadAt: .background`.
///
///     // e.g. in the app delegate, kept for as long as `vazhi` is used:
///     memoryObserver = MemoryWarningObserver(vazhi: vazhi)
///
/// The Vazhi is held weakly; the observers are removed when this object is released. The unload
/// runs off the main thread (it waits for the model's worker and reopens the knowledge base).
/// On macOS, where there are no memory warnings, a `DispatchSource.makeMemoryPressureSource`
/// handler can call `onMemoryPressure` the same way.
public final class MemoryWarningObserver {
    private let center: NotificationCenter
    private let tokens: [NSObjectProtocol]

    @MainActor
    public init(vazhi: Vazhi, reportBackground: Bool = false, center: NotificationCenter = .default) {
        self.center = center
        let forward: @Sendable (MemoryPressure) -> Void = { [weak vazhi] level in
            guard let vazhi else { return }
            Task {
                // The async overload: it runs the blocking call on a detached task.
                _ = try? await vazhi.onMemoryPressure(level: level)
            }
        }
        var tokens = [
            center.addObserver(
                forName: UIApplication.didReceiveMemoryWarningNotification, object: nil, queue: nil
            ) { _ in forward(.critical) }
        ]
        if reportBackground {
            tokens.append(
                center.addObserver(
                    forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: nil
                ) { _ in forward(.background) })
        }
        self.tokens = tokens
    }

    deinit {
        for token in tokens {
            center.removeObserver(token)
        }
    }
}
#endif
