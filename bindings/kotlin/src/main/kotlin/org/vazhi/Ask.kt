package org.vazhi

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.last
import kotlinx.coroutines.withContext
import org.vazhi.ffi.AnswerSummary
import org.vazhi.ffi.AskListener
import org.vazhi.ffi.AskOptions
import org.vazhi.ffi.Conversation
import org.vazhi.ffi.TaskHandle
import org.vazhi.ffi.ToolCall
import org.vazhi.ffi.Vazhi
import org.vazhi.ffi.VazhiConfig
import org.vazhi.ffi.VazhiException

/** One event of a streamed answer, in order: [Routed], then [Card]s and [Token]s, then [Done]. */
sealed interface AskEvent {
    /** The route chosen (`lookup`, `search`, `hybrid`, `generate`) and why. Always first. */
    data class Routed(val route: String, val reason: String) : AskEvent

    /** A knowledge card, to show verbatim with its source and licence. */
    data class Card(val card: org.vazhi.ffi.Card) : AskEvent

    /**
     * Model text (whole characters): a token's worth, or with the fact guard on
     * ([org.vazhi.ffi.FactPolicy]), a whole sentence. [unsupported]: the guard found a fact in
     * it (a number, phone number, year, quote or name) that neither the question nor the cards
     * hold.
     */
    data class Token(val text: String, val unsupported: Boolean = false) : AskEvent

    /** The model's reasoning; only with [AskOptions.showReasoning]. */
    data class Reasoning(val text: String) : AskEvent

    /**
     * The model called a tool. A built-in knowledge call ([ToolCall.builtin]) is run by Vazhi
     * and its records follow as [Card]s; an app's tool is answered by the `onToolCall`
     * handler given to [ask].
     */
    data class Tool(val call: ToolCall) : AskEvent

    /** The answer is complete. Always last. */
    data class Done(val summary: AnswerSummary) : AskEvent
}

/**
 * Opens the data directory, imports the config's packs and loads its model, on
 * [Dispatchers.IO] (loading a model takes a second or more). Close the result (`use {}`).
 */
suspend fun openVazhi(config: VazhiConfig): Vazhi = withContext(Dispatchers.IO) { Vazhi(config) }

/**
 * Asks one question as a cold [Flow]: collecting starts the answer, and cancelling the
 * collector (or `take(n)`, `first()`…) stops the model. Failures are thrown as
 * [VazhiException]. Events are never dropped: a slow collector slows the model down.
 */
fun Vazhi.ask(text: String, options: AskOptions = AskOptions()): Flow<AskEvent> =
    answerFlow(null) { listener -> ask(text, options, listener) }

/** [Vazhi.ask] within this conversation: follow-ups see earlier turns. */
fun Conversation.ask(text: String, options: AskOptions = AskOptions()): Flow<AskEvent> =
    answerFlow(null) { listener -> ask(text, options, listener) }

/**
 * [Vazhi.ask] with the app's tools ([AskOptions.tools]): each call the model makes to one of
 * them is passed to [onToolCall], a suspend function run in the collector's scope, and what
 * it returns (JSON text, ideally) is the result the model reads next. A handler that throws
 * gives the model an error result; the answer goes on. The calls also appear in the flow as
 * [AskEvent.Tool].
 */
fun Vazhi.ask(
    text: String,
    options: AskOptions,
    onToolCall: suspend (ToolCall) -> String,
): Flow<AskEvent> = answerFlow(onToolCall) { listener -> ask(text, options, listener) }

/** The tool-calling [Vazhi.ask] within this conversation. */
fun Conversation.ask(
    text: String,
    options: AskOptions,
    onToolCall: suspend (ToolCall) -> String,
): Flow<AskEvent> = answerFlow(onToolCall) { listener -> ask(text, options, listener) }

/**
 * An answer that a constrained ask ([AskOptions.jsonSchema] or [AskOptions.grammar]) did not
 * finish: cut short by `maxTokens` ([finish] `incomplete`), complete under the grammar but
 * failing a schema keyword the grammar cannot enforce (`invalid`), or cancelled; [finish] is
 * null when no model is loaded (the answer was knowledge cards). [text] is what the model wrote.
 */
class UnfinishedAnswerException(val finish: String?, val text: String) :
    Exception(
        if (finish == null) "no model is loaded: only the model writes a constrained answer"
        else "the constrained answer ended '$finish' and does not satisfy its schema or grammar",
    )

/**
 * Asks for an answer that is JSON following [schema] (a JSON Schema document) and returns the
 * JSON text, ready for the app's parser. The model answers even a question the knowledge base
 * matches exactly, grounded on its record. A schema that cannot be used throws
 * [VazhiException.InvalidInput] before anything starts; an answer that does not satisfy the
 * schema throws [UnfinishedAnswerException], never returns.
 */
suspend fun Vazhi.askJson(text: String, schema: String, options: AskOptions = AskOptions()): String =
    finishedText(ask(text, options.copy(jsonSchema = schema, grammar = null)))

/** [Vazhi.askJson] within this conversation. */
suspend fun Conversation.askJson(text: String, schema: String, options: AskOptions = AskOptions()): String =
    finishedText(ask(text, options.copy(jsonSchema = schema, grammar = null)))

private suspend fun finishedText(answer: Flow<AskEvent>): String {
    val summary = (answer.last() as AskEvent.Done).summary
    if (summary.finish != "end_of_text") throw UnfinishedAnswerException(summary.finish, summary.text)
    return summary.text
}

private fun answerFlow(
    onToolCall: (suspend (ToolCall) -> String)?,
    start: (AskListener) -> TaskHandle,
): Flow<AskEvent> = callbackFlow {
    val started = CompletableDeferred<TaskHandle>()
    // Called on a Vazhi thread. trySendBlocking waits for buffer space instead of dropping
    // tokens; it returns at once when the collector has gone.
    val listener = object : AskListener {
        override fun onRouted(route: String, reason: String) {
            trySendBlocking(AskEvent.Routed(route, reason))
        }

        override fun onCard(card: org.vazhi.ffi.Card) {
            trySendBlocking(AskEvent.Card(card))
        }

        override fun onToken(text: String, unsupported: Boolean) {
            trySendBlocking(AskEvent.Token(text, unsupported))
        }

        override fun onReasoning(text: String) {
            trySendBlocking(AskEvent.Reasoning(text))
        }

        override fun onToolCall(call: ToolCall) {
            trySendBlocking(AskEvent.Tool(call))
            if (call.builtin) return
            // The answer waits on its own thread; the handler runs in the collector's scope.
            launch {
                val result = if (onToolCall == null) {
                    """{"error": "this app answers no tool calls"}"""
                } else {
                    try {
                        onToolCall(call)
                    } catch (e: Throwable) {
                        // The collector gone: stop. The handler's own timeout or failure: the
                        // model gets an error result and the answer goes on.
                        if (e is kotlinx.coroutines.CancellationException && !isActive) throw e
                        """{"error": ${jsonString(e.message ?: e.toString())}}"""
                    }
                }
                // Refused when the answer stopped waiting (cancelled, timed out, closed): the
                // result has nowhere to go, and the flow is not failed for it.
                runCatching { started.await().submitToolResult(call.id, result) }
            }
        }

        override fun onDone(summary: AnswerSummary) {
            trySendBlocking(AskEvent.Done(summary))
            channel.close()
        }

        override fun onError(error: VazhiException) {
            close(error)
        }
    }
    val handle = start(listener)
    started.complete(handle)
    awaitClose {
        handle.cancel()
        handle.close()
    }
}

/** [text] as a JSON string literal. */
private fun jsonString(text: String): String = buildString {
    append('"')
    for (c in text) {
        when {
            c == '"' -> append("\\\"")
            c == '\\' -> append("\\\\")
            c < ' ' -> append("\\u%04x".format(c.code))
            else -> append(c)
        }
    }
    append('"')
}
