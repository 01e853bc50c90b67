// A KeyProvider for the encrypted feedback store, backed by the Keychain. Never compiled or run
// here (no Swift toolchain on the machine it was written on): see bindings/swift/README.md.

import Foundation
import Security
import VazhiFFI

/// Keeps the feedback store's 256-bit keys in the Keychain: one generic-password item per key
/// (`kSecAttrService` = `service`, `kSecAttrAccount` = the key id), readable after the first
/// unlock following a restart and never synced or restored to another device
/// (`kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`). After a restore to a new phone the keys
/// are absent, so the store opens with `VazhiError.KeyUnavailable` and the app may `openFresh`.
///
///     let keys = KeychainKeyProvider()
///     let store = try await FeedbackStore.open(dataDir: dir.path, keys: keys)
///
/// Called by Vazhi from its own threads; the Keychain API is thread-safe.
///
/// On macOS the item lives in the data-protection keychain (`kSecUseDataProtectionKeychain`), the
/// iOS-style keychain that honours `kSecAttrAccessible`; it needs a signed app with a
/// keychain-access-groups (or application-identifier) entitlement. Unsigned test runners get
/// `errSecMissingEntitlement` (-34018): tests use an in-memory provider instead.
public final class KeychainKeyProvider: KeyProvider {
    /// The Keychain service the keys are filed under; use one per data directory.
    public let service: String
    /// A keychain access group shared with an app extension, if any.
    public let accessGroup: String?

    public init(service: String = "org.vazhi.feedback-keys", accessGroup: String? = nil) {
        self.service = service
        self.accessGroup = accessGroup
    }

    public func getKey(keyId: String) throws -> Data? {
        var query = baseQuery(keyId)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let data = item as? Data else { throw failure("read", keyId, status) }
            return data
        case errSecItemNotFound:
            return nil
        default:
            // Only "not found" means absent. Anything else — notably errSecInteractionNotAllowed
            // while the device has not been unlocked since it started (a background launch) —
            // must throw: answering nil would tell Vazhi the key is gone, and an app that then
            // calls openFresh would set its readable feedback aside.
            throw failure("read", keyId, status)
        }
    }

    public func createKey(keyId: String) throws -> Data {
        var bytes = [UInt8](repeating: 0, count: 32)
        let random = SecRandomCopyBytes(kSecRandomDefault, bytes.count, &bytes)
        guard random == errSecSuccess else {
            throw VazhiError.Internal(detail: "keychain: SecRandomCopyBytes failed (\(random))")
        }
        let key = Data(bytes)
        // Best effort: `key` (and the copy handed to Rust, which wipes its own) remain.
        bytes.withUnsafeMutableBytes { raw in
            _ = memset_s(raw.baseAddress, rsize_t(raw.count), 0, rsize_t(raw.count))
        }

        var attributes = baseQuery(keyId)
        attributes[kSecValueData as String] = key
        attributes[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(attributes as CFDictionary, nil)
        switch status {
        case errSecSuccess:
            return key
        case errSecDuplicateItem:
            // Vazhi asks for new ids only; overwriting a key would make its records unreadable.
            throw VazhiError.Internal(detail: "keychain: key \(keyId) already exists (never overwritten)")
        default:
            throw failure("store", keyId, status)
        }
    }

    public func deleteKey(keyId: String) throws {
        let status = SecItemDelete(baseQuery(keyId) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw failure("delete", keyId, status)
        }
    }

    private func baseQuery(_ keyId: String) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: keyId,
        ]
        if let accessGroup {
            query[kSecAttrAccessGroup as String] = accessGroup
        }
        #if os(macOS)
        query[kSecUseDataProtectionKeychain as String] = true
        #endif
        return query
    }

    /// The error handed back to Vazhi. (vazhi-core keeps only its text — a provider's error
    /// becomes a "key store" failure whatever its case — so the text says what happened.)
    private func failure(_ operation: String, _ keyId: String, _ status: OSStatus) -> VazhiError {
        let message = SecCopyErrorMessageString(status, nil) as String? ?? "OSStatus \(status)"
        return VazhiError.Internal(detail: "keychain: \(operation) \(keyId) failed: \(message) (\(status))")
    }
}
