package org.vazhi

import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertInstanceOf
import org.junit.jupiter.api.io.TempDir
import org.vazhi.ffi.VazhiConfig

/** Tamil text through the boundary: a Thirukkural lookup without a model. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class KnowledgeTest {
    /** Kural 1 exactly as in assets/packs/thirukkural/records.jsonl. */
    private val kural1 = "அகர முதல எழுத்தெல்லாம் ஆதி\nபகவன் முதற்றே உலகு."

    @Test
    fun `a Tamil lookup answers with the kural's card`(@TempDir dir: Path) = runBlocking {
        val config = VazhiConfig(dataDir = dir.toString(), packDirs = listOf(Fixtures.kuralPack))
        openVazhi(config).use { vazhi ->
            assertFalse(vazhi.hasModel())
            val events = vazhi.ask("குறள் 1").toList()

            val routed = assertInstanceOf<AskEvent.Routed>(events.first())
            assertEquals("lookup", routed.route)
            val cards = events.filterIsInstance<AskEvent.Card>().map { it.card }
            assertEquals(1, cards.size, "cards: $cards")
            val card = cards.single()
            assertEquals("kural-1", card.id)
            assertEquals("thirukkural", card.pack)
            assertTrue(card.body.startsWith(kural1), card.body)
            assertEquals("Kural 1 · கடவுள் வாழ்த்து · The Praise of God", card.title)
            assertTrue(events.none { it is AskEvent.Token })
            val done = assertInstanceOf<AskEvent.Done>(events.last())
            assertEquals(1u, done.summary.cards)
            assertEquals(0u, done.summary.generatedTokens)
        }
    }

    @Test
    fun `the suspending knowledge calls return the same card`(@TempDir dir: Path) = runBlocking {
        openKnowledgeBase(dir.toString()).use { kb ->
            val report = kb.io.importPack(Fixtures.kuralPack)
            assertEquals("thirukkural", report.name)
            assertTrue(report.records >= 1330u, "records: ${report.records}")

            val card = kb.io.lookup("thirukkural", "குறள் 1")!!
            assertTrue(card.body.startsWith(kural1))
            // Native-digit and case normalisation happen on the Rust side.
            assertEquals(card, kb.io.lookup("thirukkural", "KURAL 1"))

            val hits = kb.io.search("எழுத்தெல்லாம்", limit = 5, pack = "thirukkural")
            assertTrue(hits.any { it.card.id == "kural-1" }, "hits: ${hits.map { it.card.id }}")
        }
    }
}
