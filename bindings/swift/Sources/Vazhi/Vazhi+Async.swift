// The idiomatic Swift layer over the generated VazhiFFI module:
//   - answers (`Vazhi.ask`, `Conversation.ask`) and downloads (`ModelManager.download`) as
//     AsyncThrowingStream: a listener object bridges Vazhi's callbacks to the stream's
//     continuation, and ending the stream early cancels the answer / pauses the download;
//   - `async` forms of the calls that block (opening, loading a model, the knowledge base and the
//     feedback store), run on a detached task so that they never block the caller's actor.
//
// Written against the Swift that uniffi 0.32.2 generates for vazhi-ffi, but never compiled: the
// machine it was written on has no Swift toolchain (see bindings/swift/README.md).

@_exported import VazhiFFI
import Foundation

// MARK: - Answers

/// One event of an answer, in this order: `routed`, then `card`s (knowledge, verbatim) and/or
/// `token`s (model text), then `done`. A failure ends the stream by throwing a ``VazhiError``.
public enum AskEvent: Sendable {
    /// The route chosen (`lookup`, `search`, `hybrid` or `generate`) and why.
    case routed(route: String, reason: String)
    /// A knowledge card: show it as it is, with its pack and source.
    case card(Card)
    /// Model text (whole characters): a token's worth, or with the fact guard on, a whole
    /// sentence. `unsupported`: the guard found a fact in it (a number, phone number, year,
    /// quote or name) that neither the question nor the cards hold.
    case token(String, unsupported: Bool)
    /// The model's reasoning (only with `AskOptions.showReasoning`).
    case reasoning(String)
    /// The model called a tool. A built-in call (`builtin == true`) is run by Vazhi; the
    /// stream API does not yet hand out the `TaskHandle` whose `submitToolResult` answers an
    /// app's own tool, so offer app tools from Swift through the generated `ask` for now.
    case toolCall(ToolCall)
    /// The answer is complete; the stream ends after this event. `summary.finish` is
    /// `"cancelled"` when the answer was cancelled.
    case done(AnswerSummary)
}

/// Receives one answer from a Vazhi thread and hands it to a stream.
final class AskStreamListener: AskListener {
    private let continuation: AsyncThrowingStream<AskEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<AskEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onRouted(route: String, reason: String) {
        continuation.yield(.routed(route: route, reason: reason))
    }

    func onCard(card: Card) {
        continuation.yield(.card(card))
    }

    func onToken(text: String, unsupported: Bool) {
        continuation.yield(.token(text, unsupported: unsupported))
    }

    func onReasoning(text: String) {
        continuation.yield(.reasoning(text))
    }

    func onToolCall(call: ToolCall) {
        continuation.yield(.toolCall(call))
    }

    func onDone(summary: AnswerSummary) {
        continuation.yield(.done(summary))
        continuation.finish()
    }

    func onError(error: VazhiError) {
        continuation.finish(throwing: error)
    }
}

/// A stream over the answer that `start` begins. The stream owns the answer's `TaskHandle`:
/// Vazhi cancels an answer whose handle is released, so the handle must live as long as the
/// stream, and a stream that ends early (the consumer breaks out of its loop, or its task is
/// cancelled) cancels the answer at once.
private func answerStream(
    _ start: (AskListener) throws -> TaskHandle
) -> AsyncThrowingStream<AskEvent, Error> {
    // Unbounded: an answer is at most `maxTokens` tokens, and a slow reader must not lose any.
    let (stream, continuation) = AsyncThrowingStream.makeStream(
        of: AskEvent.self, throwing: Error.self, bufferingPolicy: .unbounded)
    do {
        let handle = try start(AskStreamListener(continuation))
        continuation.onTermination = { termination in
            if case .cancelled = termination {
                handle.cancel()
            }
            // Either way this closure, and with it the handle, is released now.
        }
    } catch {
        continuation.finish(throwing: error)
    }
    return stream
}

extension Vazhi {
    /// Opens `config.dataDir` (importing `config.packDirs`) and loads the model the config names,
    /// off the calling thread: the async form of `Vazhi(config:)`, which blocks for as long as
    /// loading a model takes (a second or more).
    public static func load(
        _ config: VazhiConfig, priority: TaskPriority? = nil
    ) async throws -> Vazhi {
        try await blocking(priority) { try Vazhi(config: config) }
    }

    /// Asks one question. Events arrive as the answer is produced:
    ///
    ///     for try await event in vazhi.ask("kural 1") {
    ///         switch event {
    ///         case .routed(let route, _): …
    ///         case .card(let card): show(card)
    ///         case .token(let text, _): append(text)
    ///         case .done(let summary): finish(summary)
    ///         }
    ///     }
    ///
    /// Leaving the loop early, or cancelling the task that iterates, cancels the answer (the
    /// model stops within a token). Errors are ``VazhiError``s.
    public func ask(
        _ text: String, options: AskOptions = AskOptions()
    ) -> AsyncThrowingStream<AskEvent, Error> {
        answerStream { listener in
            try self.ask(text: text, options: options, listener: listener)
        }
    }

    /// Loads the configured model again after an unload, off the calling thread.
    public func reload() async throws {
        try await blocking(nil) { try self.reload() }
    }

    /// Frees the model's memory, off the calling thread. Later answers come from the knowledge
    /// base; answers in progress end with `VazhiError.ModelUnloaded`.
    public func unload() async throws {
        try await blocking(nil) { try self.unload() }
    }

    /// Tells Vazhi that the system wants memory back, off the calling thread; returns whether
    /// the model was unloaded (at or above the config's `unloadAt`, default `.critical`).
    @discardableResult
    public func onMemoryPressure(level: MemoryPressure) async throws -> Bool {
        try await blocking(nil) { try self.onMemoryPressure(level: level) }
    }
}

extension Conversation {
    /// Asks within this conversation (follow-ups see earlier turns); see ``Vazhi/ask(_:options:)``.
    public func ask(
        _ text: String, options: AskOptions = AskOptions()
    ) -> AsyncThrowingStream<AskEvent, Error> {
        answerStream { listener in
            try self.ask(text: text, options: options, listener: listener)
        }
    }
}

// MARK: - Downloads

/// One event of a model download: `progress` (throttled) any number of times, then `finished`.
/// A failure ends the stream by throwing a ``VazhiError``.
public enum DownloadEvent: Sendable {
    /// Bytes on disk, total, speed, estimated time left, and the phase.
    case progress(DownloadProgress)
    /// The download ended (installed, paused or cancelled); the stream ends after this event.
    case finished(DownloadOutcome)
}

/// What to do with a download whose stream ends before the download does.
public enum DownloadStreamEnd: Sendable {
    /// Stop and keep the partial file; downloading again resumes (the default).
    case pause
    /// Stop and delete the partial file.
    case cancel
}

/// Receives one download from a Vazhi thread and hands it to a stream.
final class DownloadStreamListener: DownloadListener {
    private let continuation: AsyncThrowingStream<DownloadEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<DownloadEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onProgress(progress: DownloadProgress) {
        continuation.yield(.progress(progress))
    }

    func onFinished(outcome: DownloadOutcome) {
        continuation.yield(.finished(outcome))
        continuation.finish()
    }

    func onError(error: VazhiError) {
        continuation.finish(throwing: error)
    }
}

extension ModelManager {
    /// Downloads (or resumes) model `id`, verifying its SHA-256 before installing it:
    ///
    ///     for try await event in manager.download("smollm2-135m-instruct-q4") {
    ///         if case .progress(let p) = event { progressView.progress = Double(p.bytes) / Double(p.total) }
    ///     }
    ///
    /// Ending the stream early (leaving the loop, cancelling the task) pauses the download and
    /// keeps the partial file, or deletes it with `whenStreamEnds: .cancel`; the download thread
    /// stops shortly after (a new download of the same model may meet `VazhiError.Busy` until
    /// it has). Only a stream run to its end shows the outcome. For downloads that must survive
    /// the app being suspended, download with a background `URLSession` and hand the file to
    /// `installDownloaded(id:path:)` instead.
    public func download(
        _ id: String, whenStreamEnds: DownloadStreamEnd = .pause
    ) -> AsyncThrowingStream<DownloadEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: DownloadEvent.self, throwing: Error.self, bufferingPolicy: .unbounded)
        do {
            // Releasing a DownloadTask does not stop its download (vazhi-ffi leaves that to an
            // explicit pause or cancel), so the stream does it when it ends early.
            let task = try self.download(id: id, listener: DownloadStreamListener(continuation))
            continuation.onTermination = { termination in
                guard case .cancelled = termination else { return }
                switch whenStreamEnds {
                case .pause: task.pause()
                case .cancel: task.cancel()
                }
            }
        } catch {
            continuation.finish(throwing: error)
        }
        return stream
    }

    /// Where model `id` stands on this device, off the calling thread.
    public func status(id: String) async throws -> ModelState {
        try await blocking(nil) { try self.status(id: id) }
    }

    /// Checks that model `id` fits this device (RAM, storage), off the calling thread.
    public func checkFits(id: String) async throws {
        try await blocking(nil) { try self.checkFits(id: id) }
    }

    /// Deletes a paused or abandoned partial download, off the calling thread.
    @discardableResult
    public func discardPartial(id: String) async throws -> Bool {
        try await blocking(nil) { try self.discardPartial(id: id) }
    }

    /// Removes model `id` (and any partial download), off the calling thread.
    @discardableResult
    public func remove(id: String) async throws -> Bool {
        try await blocking(nil) { try self.remove(id: id) }
    }
}

// MARK: - Knowledge base

extension KnowledgeBase {
    /// Opens (creating if needed) the knowledge base in `dataDir`, off the calling thread.
    public static func `open`(dataDir: String) async throws -> KnowledgeBase {
        try await blocking(nil) { try KnowledgeBase.open(dataDir: dataDir) }
    }

    /// Imports (or upgrades to) the pack in directory `dir`, off the calling thread.
    public func importPack(dir: String) async throws -> ImportReport {
        try await blocking(nil) { try self.importPack(dir: dir) }
    }

    /// The record with exactly this key in `pack` (native digits and case are normalised).
    public func lookup(pack: String, key: String) async throws -> Card? {
        try await blocking(nil) { try self.lookup(pack: pack, key: key) }
    }

    /// Full-text search (any text; never interpreted as search syntax), best first.
    public func search(
        query: String, limit: UInt32 = 10, pack: String? = nil
    ) async throws -> [SearchHit] {
        try await blocking(nil) { try self.search(query: query, limit: limit, pack: pack) }
    }

    /// The installed packs.
    public func packs() async throws -> [PackInfo] {
        try await blocking(nil) { try self.packs() }
    }

    /// Removes pack `name`.
    public func removePack(name: String) async throws {
        try await blocking(nil) { try self.removePack(name: name) }
    }
}

// MARK: - Feedback

extension FeedbackStore {
    /// Opens the encrypted feedback store in `dataDir`, off the calling thread. Throws
    /// `VazhiError.KeyUnavailable` (changing nothing) if its key is gone; see `openFresh`.
    public static func `open`(dataDir: String, keys: KeyProvider) async throws -> FeedbackStore {
        try await blocking(nil) { try FeedbackStore.open(dataDir: dataDir, keys: keys) }
    }

    /// Sets an unreadable store aside and opens a new one, off the calling thread.
    public static func openFresh(dataDir: String, keys: KeyProvider) async throws -> FeedbackStore {
        try await blocking(nil) { try FeedbackStore.openFresh(dataDir: dataDir, keys: keys) }
    }

    /// Records one rating; returns its record id.
    @discardableResult
    public func record(feedback: FeedbackInput) async throws -> String {
        try await blocking(nil) { try self.record(feedback: feedback) }
    }

    /// Records a batch in one transaction: all of it or none.
    @discardableResult
    public func recordBatch(feedback: [FeedbackInput]) async throws -> [String] {
        try await blocking(nil) { try self.recordBatch(feedback: feedback) }
    }

    /// Decrypts the records created in `[fromMs, untilMs)`, oldest first, at most `limit`.
    public func list(
        fromMs: Int64? = nil, untilMs: Int64? = nil, limit: UInt64? = nil
    ) async throws -> FeedbackListing {
        try await blocking(nil) { try self.list(fromMs: fromMs, untilMs: untilMs, limit: limit) }
    }

    /// Writes the readable records as decrypted JSON lines to `path` (owner-only, atomic).
    public func export(
        path: String, fromMs: Int64? = nil, untilMs: Int64? = nil
    ) async throws -> FeedbackExport {
        try await blocking(nil) { try self.export(path: path, fromMs: fromMs, untilMs: untilMs) }
    }

    /// Deletes records created before `beforeMs`; returns how many.
    @discardableResult
    public func purge(beforeMs: Int64) async throws -> UInt64 {
        try await blocking(nil) { try self.purge(beforeMs: beforeMs) }
    }

    /// Deletes every record; returns how many.
    @discardableResult
    public func purgeAll() async throws -> UInt64 {
        try await blocking(nil) { try self.purgeAll() }
    }

    /// Records in the store (readable or not).
    public func count() async throws -> UInt64 {
        try await blocking(nil) { try self.count() }
    }

    /// Re-encrypts records under old keys with the current key; deletes unused old keys.
    @discardableResult
    public func reencrypt() async throws -> UInt64 {
        try await blocking(nil) { try self.reencrypt() }
    }
}

// MARK: - Errors

extension VazhiError {
    /// What went wrong, without the case name (`errorDescription` is uniffi's
    /// `String(reflecting:)`). Never contains user text. Vazhi may add cases: branch on the ones
    /// you handle and keep a default.
    public var detail: String {
        // Exhaustive on purpose: a new case in vazhi-ffi makes this layer fail to compile
        // instead of answering with the wrong text.
        switch self {
        case .InvalidInput(detail: let detail),
            .ModelNotFound(detail: let detail),
            .ModelRefused(detail: let detail),
            .OutOfMemory(detail: let detail),
            .Generation(detail: let detail),
            .ModelUnloaded(detail: let detail),
            .Busy(detail: let detail),
            .Knowledge(detail: let detail),
            .Offline(detail: let detail),
            .Download(detail: let detail),
            .Verification(detail: let detail),
            .InsufficientResources(detail: let detail),
            .KeyUnavailable(detail: let detail),
            .DataDamaged(detail: let detail),
            .Io(detail: let detail),
            .Internal(detail: let detail):
            return detail
        }
    }
}

// MARK: - Running blocking calls

/// Runs `work`, a call into Vazhi that blocks, on a detached task, so the caller's actor (the
/// main actor, typically) is never blocked. The task inherits neither the caller's actor nor its
/// cancellation: cancelling the awaiting task does not interrupt the call, which runs to its end.
///
/// `work` is a synchronous closure on purpose: inside it, `self.reload()` and the like resolve to
/// the generated blocking methods, not to the `async` overloads declared in this file.
func blocking<T: Sendable>(
    _ priority: TaskPriority?, _ work: @escaping @Sendable () throws -> T
) async throws -> T {
    try await Task.detached(priority: priority ?? Task.currentPriority) {
        try work()
    }.value
}
