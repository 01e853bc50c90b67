package org.vazhi

import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.io.path.writeBytes
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.catch
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertInstanceOf
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import org.vazhi.ffi.AnswerSummary
import org.vazhi.ffi.AskListener
import org.vazhi.ffi.AskOptions
import org.vazhi.ffi.Card
import org.vazhi.ffi.FactPolicy
import org.vazhi.ffi.LogLevel
import org.vazhi.ffi.Vazhi
import org.vazhi.ffi.VazhiException
import org.vazhi.ffi.ToolCall
import org.vazhi.ffi.ToolSpec
import org.vazhi.ffi.setLogger

/** Answers from the real model (SmolLM2 135M), streamed as Flows; errors; cancellation. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AskTest {
    private lateinit var dir: Path
    private lateinit var vazhi: Vazhi

    @BeforeAll
    fun open(@TempDir tmp: Path) = runBlocking {
        dir = tmp
        setLogger(TestLog, LogLevel.DEBUG)
        vazhi = openVazhi(Fixtures.modelConfig(dir.resolve("data")))
        assertTrue(vazhi.hasModel())
    }

    @AfterAll
    fun close() = vazhi.close()

    private fun collect(flow: Flow<AskEvent>): List<AskEvent> = runBlocking {
        withTimeout(60_000) { flow.toList() }
    }

    @Test
    fun `an answer streams from the model - Routed first, tokens, Done last`() {
        val events = collect(vazhi.ask("What is the capital of France?", AskOptions(maxTokens = 24u, temperature = 0f)))

        val routed = assertInstanceOf<AskEvent.Routed>(events.first())
        assertEquals("generate", routed.route)
        val tokens = events.filterIsInstance<AskEvent.Token>()
        assertTrue(tokens.isNotEmpty(), "no tokens in $events")
        val done = assertInstanceOf<AskEvent.Done>(events.last())
        assertEquals(1, events.count { it is AskEvent.Done })
        assertTrue(done.summary.generatedTokens > 0u)
        assertEquals(tokens.joinToString("") { it.text }, done.summary.text)
        assertEquals("generate", done.summary.route)
        assertFalse(done.summary.modelUnavailable)
    }

    @Test
    fun `a conversation streams too`() {
        vazhi.conversation().use { conversation ->
            val first = collect(conversation.ask("My name is Kavin.", AskOptions(maxTokens = 8u)))
            val second = collect(conversation.ask("What is my name?", AskOptions(maxTokens = 8u)))
            for (events in listOf(first, second)) {
                assertInstanceOf<AskEvent.Routed>(events.first())
                val done = assertInstanceOf<AskEvent.Done>(events.last())
                assertTrue(done.summary.generatedTokens > 0u)
            }
        }
    }

    @Test
    fun `cancelling the collector stops the model`() {
        TestLog.clear()
        val options = AskOptions(maxTokens = 400u, temperature = 0.8f, seed = 7u)
        val firstThree = collect(vazhi.ask("Write a long story about a dragon and a river.", options).take(3))

        assertEquals(listOf(AskEvent.Routed::class, AskEvent.Token::class, AskEvent.Token::class), firstThree.map { it::class })
        // The engine's worker reports how the answer ended: cancelled, after a few tokens.
        val finished = TestLog.await(15) { "answer finished" in it.message }
        assertNotNull(finished, "the engine never reported the answer finished")
        assertTrue("Cancelled" in finished!!.message, finished.message)
        val generated = Regex("generated=(\\d+)").find(finished.message)!!.groupValues[1].toInt()
        assertTrue(generated < 100, "the model went on for $generated tokens")

        val next = collect(vazhi.ask("Say hello.", AskOptions(maxTokens = 4u)))
        val done = assertInstanceOf<AskEvent.Done>(next.last())
        assertTrue(done.summary.generatedTokens > 0u)
        assertTrue(done.summary.finish in setOf("max_tokens", "end_of_text", "stop_string"), done.summary.finish)
    }

    @Test
    fun `askJson returns JSON that follows the schema, and refuses what it cannot keep`() {
        val schema = """{"type":"object","properties":{"city":{"type":"string","maxLength":30},
            "sky":{"enum":["clear","cloudy","rain"]}},"required":["city","sky"],"additionalProperties":false}"""
        val json = runBlocking { withTimeout(60_000) { vazhi.askJson("What is the weather in Chennai?", schema, AskOptions(temperature = 0f)) } }
        val sky = Regex("\"sky\"\\s*:\\s*\"(\\w+)\"").find(json)?.groupValues?.get(1)
        assertTrue(json.trim().startsWith("{") && json.trim().endsWith("}"), json)
        assertTrue(sky in setOf("clear", "cloudy", "rain"), json)

        // Cut short: an exception, never half a JSON document as a success.
        val cut = assertThrows<UnfinishedAnswerException> {
            runBlocking { vazhi.askJson("What is the weather in Chennai?", schema, AskOptions(maxTokens = 3u)) }
        }
        assertEquals("incomplete", cut.finish)
        // A schema that is not JSON fails at once, typed.
        assertThrows<VazhiException.InvalidInput> { runBlocking { vazhi.askJson("Hi", "{\"type\": ") } }
        // A grammar through the plain options.
        val yesNo = collect(vazhi.ask("Is water wet?", AskOptions(grammar = "root ::= \"yes\" | \"no\"", temperature = 0f)))
        val done = assertInstanceOf<AskEvent.Done>(yesNo.last())
        assertEquals("end_of_text", done.summary.finish)
        assertTrue(done.summary.text in setOf("yes", "no"), done.summary.text)
    }

    @Test
    fun `an empty question fails with InvalidInput`() {
        val seen = CopyOnWriteArrayList<AskEvent>()
        val error = AtomicReference<Throwable>()
        runBlocking { vazhi.ask("  ").catch { error.set(it) }.collect { seen += it } }

        // Refused before any answer starts, with or without a model.
        assertInstanceOf<VazhiException.InvalidInput>(error.get())
        assertEquals(emptyList<AskEvent>(), seen)
    }

    @Test
    fun `a missing model file is ModelNotFound`() {
        val config = Fixtures.modelConfig(dir.resolve("missing")).copy(modelPath = dir.resolve("nope.gguf").toString())
        val e = assertThrows<VazhiException.ModelNotFound> { runBlocking { openVazhi(config) } }
        assertTrue(e.detail.isNotEmpty())
    }

    @Test
    fun `a garbage file as the model is ModelRefused`() {
        val garbage = dir.resolve("garbage.gguf").apply { writeBytes(ByteArray(1 shl 20) { (it * 31 + 7).toByte() }) }
        val config = Fixtures.modelConfig(dir.resolve("garbage")).copy(modelPath = garbage.toString())
        assertThrows<VazhiException.ModelRefused> { runBlocking { openVazhi(config) } }
    }

    @Test
    fun `a listener that throws stops the answer and nothing breaks`() {
        TestLog.clear()
        val tokens = AtomicInteger()
        val done = AtomicReference<AnswerSummary>()
        val failure = AtomicReference<VazhiException>()
        val listener = object : AskListener {
            override fun onRouted(route: String, reason: String) {}
            override fun onCard(card: Card) {}
            override fun onToken(text: String, unsupported: Boolean) {
                tokens.incrementAndGet()
                throw IllegalStateException("a bug in the app's listener")
            }
            override fun onReasoning(text: String) {}
            override fun onToolCall(call: ToolCall) {}
            override fun onDone(summary: AnswerSummary) = done.set(summary)
            override fun onError(error: VazhiException) = failure.set(error)
        }
        vazhi.ask("Tell me a long story.", AskOptions(maxTokens = 300u), listener).use { handle ->
            assertTrue(handle.wait(20_000uL), "the task did not finish")
        }
        assertEquals(1, tokens.get(), "events went on after the listener threw")
        assertNull(done.get())
        assertNull(failure.get())
        assertNotNull(TestLog.await(10) { it.level == LogLevel.WARN && "AskListener" in it.message })
        val finished = TestLog.await(10) { "answer finished" in it.message }
        assertTrue(finished?.message?.contains("Cancelled") == true, "model not cancelled: $finished")

        val next = collect(vazhi.ask("Say hello.", AskOptions(maxTokens = 4u)))
        assertInstanceOf<AskEvent.Done>(next.last())
    }

    @Test
    fun `a tool call is answered by a suspend handler and the model goes on`() = runBlocking {
        val config = Fixtures.modelConfig(dir.resolve("tools"))
            .copy(contextTokens = 2048u, chatTemplate = Fixtures.toolTemplate, maxTokens = 80u)
        openVazhi(config).use { tooled ->
            val weather = ToolSpec(
                name = "get_weather",
                description = "Get the current weather in a city.",
                parameters = """{"type":"object","properties":{"city":{"type":"string","maxLength":40}},"required":["city"]}""",
            )
            val options = AskOptions(temperature = 0f, tools = listOf(weather), requireToolCall = true)
            val asked = CopyOnWriteArrayList<ToolCall>()
            val events = withTimeout(120_000) {
                tooled.ask("Is it raining in Madurai?", options) { call ->
                    asked += call
                    kotlinx.coroutines.delay(10) // a suspending handler, as an app's network call would be
                    """{"rain_mm": 12}"""
                }.toList()
            }
            assertTrue(asked.isNotEmpty(), "no tool call: $events")
            assertEquals("get_weather", asked.first().name)
            assertTrue("\"city\"" in asked.first().argumentsJson, asked.first().argumentsJson)
            val done = assertInstanceOf<AskEvent.Done>(events.last())
            assertEquals(asked.size.toUInt(), done.summary.toolCalls)
            assertTrue(done.summary.finish != "tool_calls", "${done.summary}")
        }
    }

    @Test
    fun `the fact guard marks, or drops, a sentence with facts no card holds`() = runBlocking {
        // Asked until the small model invents a name, year or number (greedy; the first
        // question does on the shipped build).
        val questions = listOf("explain kural 7 and who wrote it", "explain kural 1", "Say hello.")
        for (policy in listOf(FactPolicy.MARK, FactPolicy.DROP)) {
            val config = Fixtures.modelConfig(dir.resolve("guard-$policy"))
                .copy(contextTokens = 1024u, maxTokens = 64u, factPolicy = policy, packDirs = listOf(Fixtures.kuralPack))
            openVazhi(config).use { guarded ->
                val events = questions.asSequence()
                    .map { collect(guarded.ask(it, AskOptions(temperature = 0f))) }
                    .firstOrNull { (it.last() as AskEvent.Done).summary.unsupportedSentences > 0u }
                assertNotNull(events, "no answer stated anything unsupported")
                val tokens = events!!.filterIsInstance<AskEvent.Token>()
                val done = assertInstanceOf<AskEvent.Done>(events.last())
                assertEquals(tokens.joinToString("") { it.text }, done.summary.text)
                when (policy) {
                    FactPolicy.MARK ->
                        assertEquals(done.summary.unsupportedSentences.toInt(), tokens.count { it.unsupported })
                    else -> assertTrue(tokens.none { it.unsupported }, "$tokens")
                }
            }
        }
    }
}
