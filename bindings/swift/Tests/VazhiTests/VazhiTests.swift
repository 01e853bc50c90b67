// XCTest skeleton for the Swift package. NOT RUN IN CI: CI is a Linux machine with no Swift
// toolchain, no Xcode and no Apple targets, and these tests were never compiled or run where they
// were written. On a Mac:
//
//     bindings/swift/build-xcframework --test      # or, after a build: cd bindings/swift && swift test
//
// They run on macOS against the XCFramework's macOS slice, with the Thirukkural pack from this
// repository (assets/packs/thirukkural) and no model: the knowledge base answers.

import Foundation
import XCTest

import Vazhi

final class VazhiTests: XCTestCase {
    /// assets/packs/thirukkural, found from this file:
    /// <repo>/bindings/swift/Tests/VazhiTests/VazhiTests.swift.
    private static let thirukkural: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Tests/VazhiTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // bindings/swift
        .deletingLastPathComponent()  // bindings
        .deletingLastPathComponent()  // <repo>
        .appendingPathComponent("assets/packs/thirukkural")
        .path

    private var dataDir: URL!

    override func setUpWithError() throws {
        dataDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("vazhi-swift-tests-\(UUID().uuidString)", isDirectory: true)
    }

    override func tearDownWithError() throws {
        if let dataDir {
            try? FileManager.default.removeItem(at: dataDir)
        }
    }

    func testSdkVersionIsSet() {
        XCTAssertFalse(sdkVersion().isEmpty)
    }

    /// The pack imports, and an exact lookup returns the kural verbatim.
    func testLookupFromThirukkuralPack() async throws {
        let kb = try await KnowledgeBase.open(dataDir: dataDir.path)
        let report = try await kb.importPack(dir: Self.thirukkural)
        XCTAssertEqual(report.name, "thirukkural")
        XCTAssertGreaterThanOrEqual(report.records, 1330)

        let card = try await kb.lookup(pack: "thirukkural", key: "kural 1")
        XCTAssertEqual(card?.id, "kural-1")
        XCTAssertEqual(card?.pack, "thirukkural")
        XCTAssertTrue(card?.body.contains("அகர முதல") == true, "the body is the kural, verbatim")

        // Keys are normalised: Tamil digits and case.
        let tamilDigit = try await kb.lookup(pack: "thirukkural", key: "குறள் ௧")
        XCTAssertEqual(tamilDigit?.id, "kural-1")
        let upper = try await kb.lookup(pack: "thirukkural", key: "KURAL 1")
        XCTAssertEqual(upper?.id, "kural-1")

        let missing = try await kb.lookup(pack: "thirukkural", key: "kural 9999")
        XCTAssertNil(missing)
    }

    /// Without a model, a kural number is answered from the pack through the stream:
    /// routed(lookup), the card, done.
    func testAskStreamsALookupWithoutAModel() async throws {
        let vazhi = try await Vazhi.load(
            VazhiConfig(dataDir: dataDir.path, packDirs: [Self.thirukkural]))
        XCTAssertFalse(vazhi.hasModel())

        var routes: [String] = []
        var cards: [Card] = []
        var summary: AnswerSummary?
        for try await event in vazhi.ask("kural 1") {
            switch event {
            case .routed(let route, _): routes.append(route)
            case .card(let card): cards.append(card)
            case .token: XCTFail("no model is loaded, so no model text")
            case .done(let done): summary = done
            }
        }
        XCTAssertEqual(routes, ["lookup"])
        XCTAssertEqual(cards.map(\.id), ["kural-1"])
        XCTAssertEqual(summary?.route, "lookup")
        XCTAssertEqual(summary?.cards, 1)
    }

    /// A blank question is refused by `ask` itself: the stream throws at once.
    func testBlankQuestionThrowsFromTheStream() async throws {
        let vazhi = try await Vazhi.load(VazhiConfig(dataDir: dataDir.path))
        do {
            for try await _ in vazhi.ask("  ") {
                XCTFail("no event for a blank question")
            }
            XCTFail("a blank question should throw")
        } catch VazhiError.InvalidInput(let detail) {
            XCTAssertFalse(detail.isEmpty)
        }
    }

    /// Failures arrive as typed VazhiErrors through the async layer.
    func testMissingModelIsATypedError() async throws {
        var config = VazhiConfig(dataDir: dataDir.path)
        config.modelPath = "/nonexistent/model.gguf"
        do {
            _ = try await Vazhi.load(config)
            XCTFail("loading a missing model file should fail")
        } catch VazhiError.ModelNotFound(let detail) {
            XCTAssertFalse(detail.isEmpty)
        }
    }

    /// The feedback store round-trips through a foreign KeyProvider (in memory here: the
    /// Keychain one needs a signed app, see KeychainKeyProvider).
    func testFeedbackRoundTripWithAnInMemoryKeyProvider() async throws {
        let keys = InMemoryKeys()
        let store = try await FeedbackStore.open(dataDir: dataDir.path, keys: keys)
        let id = try await store.record(
            feedback: FeedbackInput(
                question: "kural 1", route: "lookup", answer: "அகர முதல…", cardIds: ["kural-1"],
                rating: .up, packVersions: ["thirukkural": "1.0.0"]))
        XCTAssertFalse(id.isEmpty)

        let listing = try await store.list()
        XCTAssertEqual(listing.records.map(\.question), ["kural 1"])
        XCTAssertEqual(listing.records.first?.rating, Rating.up)
        XCTAssertTrue(listing.unreadable.isEmpty)
        XCTAssertEqual(keys.count, 1, "one key was created through the provider")
    }
}

/// A KeyProvider that keeps keys in memory (tests only).
private final class InMemoryKeys: KeyProvider, @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [String: Data] = [:]

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return keys.count
    }

    func getKey(keyId: String) throws -> Data? {
        lock.lock()
        defer { lock.unlock() }
        return keys[keyId]
    }

    func createKey(keyId: String) throws -> Data {
        var generator = SystemRandomNumberGenerator()
        let key = Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        lock.lock()
        defer { lock.unlock() }
        guard keys[keyId] == nil else {
            throw VazhiError.Internal(detail: "key \(keyId) exists")
        }
        keys[keyId] = key
        return key
    }

    func deleteKey(keyId: String) throws {
        lock.lock()
        defer { lock.unlock() }
        keys[keyId] = nil
    }
}
