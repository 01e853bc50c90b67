package org.vazhi

import java.io.File
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertInstanceOf
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import org.vazhi.ffi.AskOptions
import org.vazhi.ffi.Conversation
import org.vazhi.ffi.RestoreKind
import org.vazhi.ffi.VazhiException

/** Conversations saved to an encrypted file and restored in a new Vazhi (an app restart). */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SessionTest {
    private val options = AskOptions(maxTokens = 16u, temperature = 0f)

    private suspend fun answer(conversation: Conversation, text: String): String {
        val events = withTimeout(60_000) { conversation.ask(text, options).toList() }
        return assertInstanceOf<AskEvent.Done>(events.last()).summary.text
    }

    @Test
    fun `a conversation comes back after a restart, and a damaged file falls back`(@TempDir dir: Path) = runBlocking<Unit> {
        val keys = MemoryKeys()
        val config = Fixtures.modelConfig(dir.resolve("data"))
        val session = dir.resolve("chat.session").toString()

        val continued = openVazhi(config).use { vazhi ->
            vazhi.conversation().use { conversation ->
                answer(conversation, "Tell me about rivers.")
                val saved = conversation.io.save(session, keys)
                assertEquals(2uL, saved.messages)
                assertTrue(saved.stateTokens > 0uL, "no KV state saved: $saved")
                assertTrue(keys.keys.containsKey("vazhi-sessions"), "no session key created")
                answer(conversation, "And about mountains?")
            }
        }

        openVazhi(config).use { vazhi ->
            val restored = vazhi.io.restoreConversation(session, keys)
            assertEquals(RestoreKind.RESTORED, restored.restored.kind)
            assertEquals(null, restored.restored.reason)
            restored.conversation.use { conversation ->
                assertEquals(continued, answer(conversation, "And about mountains?"))
            }

            // One altered byte: the history comes back, not the state, and the reason says why.
            val file = File(session)
            val bytes = file.readBytes()
            bytes[bytes.size - 5] = (bytes[bytes.size - 5].toInt() xor 1).toByte()
            file.writeBytes(bytes)
            val fallback = vazhi.io.restoreConversation(session, keys)
            assertEquals(RestoreKind.HISTORY_ONLY, fallback.restored.kind)
            assertEquals("tampered", fallback.restored.reason)
            assertEquals(2uL, fallback.restored.messages)
            fallback.conversation.use { conversation ->
                assertTrue(answer(conversation, "And about mountains?").isNotEmpty())
            }

            // Another phone (no key): nothing to read. No file: an error.
            val stranger = vazhi.io.restoreConversation(session, MemoryKeys())
            assertEquals(RestoreKind.EMPTY, stranger.restored.kind)
            assertEquals("key_unavailable", stranger.restored.reason)
            stranger.conversation.close()
            assertThrows<VazhiException.Io> {
                runBlocking { vazhi.io.restoreConversation(dir.resolve("none").toString(), keys) }
            }
        }
    }
}
