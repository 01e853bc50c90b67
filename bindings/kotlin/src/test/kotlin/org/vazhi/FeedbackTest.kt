package org.vazhi

import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.io.path.readText
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import org.vazhi.ffi.FeedbackInput
import org.vazhi.ffi.Rating
import org.vazhi.ffi.VazhiException

/** Encrypted feedback with keys from a Kotlin KeyProvider. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FeedbackTest {
    private val createdAt = 1_700_000_000_000L
    private val input = FeedbackInput(
        question = "முதல் குறள் எது?",
        route = "lookup",
        answer = "அகர முதல எழுத்தெல்லாம் ஆதி\nபகவன் முதற்றே உலகு.",
        cardIds = listOf("kural-1"),
        rating = Rating.UP,
        correction = "சரி 👍",
        modelId = null,
        modelSha256 = null,
        packVersions = mapOf("thirukkural" to "1.0.0"),
        createdAtMs = createdAt,
    )

    @Test
    fun `feedback round trip, export, purge`(@TempDir dir: Path) = runBlocking {
        val keys = MemoryKeys()
        openFeedbackStore(dir.toString(), keys).use { store ->
            val id = store.io.record(input)
            assertEquals(1, keys.keys.size, "one key created")
            assertTrue(keys.keys.values.all { it.size == 32 })

            val listing = store.io.list()
            assertEquals(emptyList<Any>(), listing.unreadable)
            val r = listing.records.single()
            assertEquals(id, r.recordId)
            assertEquals(input.question, r.question)
            assertEquals(input.answer, r.answer)
            assertEquals(input.correction, r.correction)
            assertEquals(input.cardIds, r.cardIds)
            assertEquals(input.packVersions, r.packVersions)
            assertEquals(Rating.UP, r.rating)
            assertEquals(createdAt, r.createdAtMs)

            val file = dir.resolve("export.jsonl")
            assertEquals(1uL, store.io.export(file.toString()).exported)
            assertTrue(input.question in file.readText(), "question not in export")

            assertEquals(0, store.io.purge(beforeMs = createdAt))
            assertEquals(1, store.io.purge(beforeMs = createdAt + 1))
            assertEquals(0, store.io.count())
        }
    }

    @Test
    fun `a lost key makes reopening fail with KeyUnavailable, changing nothing`(@TempDir dir: Path) = runBlocking {
        val keys = MemoryKeys()
        openFeedbackStore(dir.toString(), keys).use { it.io.record(input) }
        val saved = HashMap(keys.keys)

        keys.keys.clear() // e.g. restored to a new phone without its Keystore
        assertThrows<VazhiException.KeyUnavailable> { runBlocking { openFeedbackStore(dir.toString(), keys) } }

        keys.keys.putAll(saved)
        openFeedbackStore(dir.toString(), keys).use { store ->
            assertEquals(1, store.io.count())
            assertEquals(input.question, store.io.list().records.single().question)
        }
    }
}
