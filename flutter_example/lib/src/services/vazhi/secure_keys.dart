// The feedback store's encryption keys, kept in flutter_secure_storage (Android Keystore-backed
// encrypted preferences, iOS Keychain) as base64 under 'vazhi-key-<id>'.
//
// Vazhi calls these from a worker thread and waits for the reply. Every callback catches its
// own exceptions into KeyReply.error, with only the exception's type: a message could carry
// key material, and must never reach a log.

import 'dart:convert';
import 'dart:math';
import 'dart:typed_data';

import 'package:flutter_secure_storage/flutter_secure_storage.dart';
import 'package:vazhi_example/src/rust/api/feedback.dart';

/// Feedback-store keys in the platform's secure storage.
class SecureKeys {
  /// Keys in [storage] (default: the platform's secure storage).
  SecureKeys({FlutterSecureStorage? storage})
      : _storage = storage ??
            const FlutterSecureStorage(
              aOptions: AndroidOptions(encryptedSharedPreferences: true),
            );

  /// Prefix of the storage entries.
  static const String prefix = 'vazhi-key-';

  /// A key's length in bytes (AES-256).
  static const int keyLength = 32;

  final FlutterSecureStorage _storage;

  /// The key [keyId], or a reply with no key when it does not exist (e.g. after a restore to a
  /// new phone).
  Future<KeyReply> getKey(String keyId) => _reply(() async {
        final stored = await _storage.read(key: '$prefix$keyId');
        return KeyReply(key: stored == null ? null : base64Decode(stored));
      });

  /// A new random key [keyId], stored before it is returned.
  Future<KeyReply> createKey(String keyId) => _reply(() async {
        final random = Random.secure();
        final key = Uint8List(keyLength);
        for (var i = 0; i < keyLength; i++) {
          key[i] = random.nextInt(256);
        }
        await _storage.write(key: '$prefix$keyId', value: base64Encode(key));
        return KeyReply(key: key);
      });

  /// Deletes key [keyId] (no error if it does not exist).
  Future<KeyReply> deleteKey(String keyId) => _reply(() async {
        await _storage.delete(key: '$prefix$keyId');
        return const KeyReply();
      });

  static Future<KeyReply> _reply(Future<KeyReply> Function() body) async {
    try {
      return await body();
    } catch (e) {
      // The type only: never the message (it could hold key bytes).
      return KeyReply(error: e.runtimeType.toString());
    }
  }
}
