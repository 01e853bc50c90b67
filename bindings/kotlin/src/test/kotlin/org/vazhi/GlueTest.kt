package org.vazhi

import java.nio.file.Path
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertInstanceOf
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import org.vazhi.ffi.AnswerSummary
import org.vazhi.ffi.AskListener
import org.vazhi.ffi.AskOptions
import org.vazhi.ffi.Card
import org.vazhi.ffi.FeedbackStore
import org.vazhi.ffi.InternalException
import org.vazhi.ffi.KnowledgeBase
import org.vazhi.ffi.ModelManager
import org.vazhi.ffi.ModelManagerConfig
import org.vazhi.ffi.Vazhi
import org.vazhi.ffi.ToolCall
import org.vazhi.ffi.VazhiConfig
import org.vazhi.ffi.VazhiException
import org.vazhi.ffi.sdkVersion
import org.vazhi.ffi.testLiveObjects
import org.vazhi.ffi.testPanic
import org.vazhi.ffi.testUnguardedPanic

/** Panics and memory: what the boundary itself must get right. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class GlueTest {
    @Test
    fun `a Rust panic becomes an exception and everything keeps working`(@TempDir dir: Path) {
        val guarded = assertThrows<VazhiException.Internal> { testPanic("boom") }
        assertTrue("boom" in guarded.detail, guarded.detail)

        val unguarded = assertThrows<InternalException> { testUnguardedPanic("unguarded boom") }
        assertTrue("unguarded boom" in unguarded.message.orEmpty(), unguarded.message)

        // The library and the JVM are still fine.
        assertTrue(sdkVersion().isNotEmpty())
        KnowledgeBase.open(dir.toString()).use { assertEquals(emptyList<Any>(), it.packs()) }
        assertThrows<VazhiException.Internal> { testPanic("again") }
    }

    @Test
    fun `closing objects frees them`(@TempDir dir: Path) {
        val baseline = testLiveObjects()
        Vazhi(VazhiConfig(dataDir = dir.toString())).use { vazhi ->
            assertEquals(baseline + 1u, testLiveObjects())
            vazhi.conversation().use { assertEquals(baseline + 2u, testLiveObjects()) }
            assertEquals(baseline + 1u, testLiveObjects())

            val done = CountDownLatch(1)
            val listener = object : AskListener {
                override fun onRouted(route: String, reason: String) {}
                override fun onCard(card: Card) {}
                override fun onToken(text: String, unsupported: Boolean) {}
                override fun onReasoning(text: String) {}
                override fun onToolCall(call: ToolCall) {}
                override fun onDone(summary: AnswerSummary) = done.countDown()
                override fun onError(error: VazhiException) = done.countDown()
            }
            vazhi.ask("வணக்கம்", AskOptions(), listener).use { handle ->
                assertTrue(done.await(10, TimeUnit.SECONDS))
                assertEquals(baseline + 2u, testLiveObjects())
                assertTrue(handle.wait(10_000uL))
            }
            assertEquals(baseline + 1u, testLiveObjects())

            // The Flow closes its TaskHandle itself.
            val events = runBlocking { vazhi.ask("வணக்கம்").toList() }
            assertInstanceOf<AskEvent.Done>(events.last())
            assertEquals(baseline + 1u, testLiveObjects())
        }
        assertEquals(baseline, testLiveObjects())

        KnowledgeBase.open(dir.toString()).use { assertEquals(baseline + 1u, testLiveObjects()) }
        FeedbackStore.open(dir.toString(), MemoryKeys()).use { assertEquals(baseline + 1u, testLiveObjects()) }
        ModelManager(ModelManagerConfig(dataDir = dir.toString())).use { assertEquals(baseline + 1u, testLiveObjects()) }
        assertEquals(baseline, testLiveObjects())
    }
}
