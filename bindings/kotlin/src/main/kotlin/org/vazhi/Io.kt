package org.vazhi

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.vazhi.ffi.Card
import org.vazhi.ffi.Conversation
import org.vazhi.ffi.FeedbackExport
import org.vazhi.ffi.FeedbackInput
import org.vazhi.ffi.FeedbackListing
import org.vazhi.ffi.FeedbackStore
import org.vazhi.ffi.ImportReport
import org.vazhi.ffi.KeyProvider
import org.vazhi.ffi.KnowledgeBase
import org.vazhi.ffi.RestoredConversation
import org.vazhi.ffi.SavedSession
import org.vazhi.ffi.SearchHit
import org.vazhi.ffi.Vazhi

// The generated methods block (disk, SQLite, decryption). These wrappers run them on
// Dispatchers.IO. Their names match the generated ones, so they hang off `.io`:
// `kb.io.lookup(pack, key)`, `store.io.record(input)`. (ModelManager.verify and
// installDownloaded are generated as suspend functions already.)

/** Opens (creating if needed) the knowledge base in [dataDir], on [Dispatchers.IO]. */
suspend fun openKnowledgeBase(dataDir: String): KnowledgeBase =
    withContext(Dispatchers.IO) { KnowledgeBase.open(dataDir) }

/**
 * Opens the feedback store in [dataDir] with keys from [keys], on [Dispatchers.IO]. Throws
 * `VazhiException.KeyUnavailable` (changing nothing) if its key is gone.
 */
suspend fun openFeedbackStore(dataDir: String, keys: KeyProvider): FeedbackStore =
    withContext(Dispatchers.IO) { FeedbackStore.open(dataDir, keys) }

/** Suspending calls of a [KnowledgeBase]: `kb.io.search("அறம்")`. */
val KnowledgeBase.io: KnowledgeIo get() = KnowledgeIo(this)

/** Suspending calls of a [FeedbackStore]: `store.io.record(input)`. */
val FeedbackStore.io: FeedbackIo get() = FeedbackIo(this)

/** [KnowledgeBase] calls run on [Dispatchers.IO]. */
@JvmInline
value class KnowledgeIo(private val kb: KnowledgeBase) {
    /** The record with exactly this [key] in [pack], or null. */
    suspend fun lookup(pack: String, key: String): Card? = io { kb.lookup(pack, key) }

    /** Full-text search, best first (any text; never parsed as search syntax). */
    suspend fun search(query: String, limit: Int = 10, pack: String? = null): List<SearchHit> =
        io { kb.search(query, limit.toUInt(), pack) }

    /** Imports (or upgrades to) the pack in directory [dir], transactionally. */
    suspend fun importPack(dir: String): ImportReport = io { kb.importPack(dir) }
}

/** [FeedbackStore] calls run on [Dispatchers.IO]. */
@JvmInline
value class FeedbackIo(private val store: FeedbackStore) {
    /** Records one rating; returns its record id. */
    suspend fun record(feedback: FeedbackInput): String = io { store.record(feedback) }

    /** Decrypts the records created in `[fromMs, untilMs)`, oldest first, at most [limit]. */
    suspend fun list(fromMs: Long? = null, untilMs: Long? = null, limit: Long? = null): FeedbackListing =
        io { store.list(fromMs, untilMs, limit?.toULong()) }

    /** Writes the readable records as decrypted JSON lines to [path] (owner-only). */
    suspend fun export(path: String, fromMs: Long? = null, untilMs: Long? = null): FeedbackExport =
        io { store.export(path, fromMs, untilMs) }

    /** Deletes records created before [beforeMs]; returns how many. */
    suspend fun purge(beforeMs: Long): Long = io { store.purge(beforeMs).toLong() }

    /** Deletes every record; returns how many. */
    suspend fun purgeAll(): Long = io { store.purgeAll().toLong() }

    /** Records in the store, readable or not. */
    suspend fun count(): Long = io { store.count().toLong() }
}

private suspend fun <T> io(block: () -> T): T = withContext(Dispatchers.IO) { block() }

/** Suspending session calls of a [Conversation]: `conversation.io.save(path, keys)`. */
val Conversation.io: ConversationIo get() = ConversationIo(this)

/** Suspending session calls of a [Vazhi]: `vazhi.io.restoreConversation(path, keys)`. */
val Vazhi.io: VazhiIo get() = VazhiIo(this)

/** [Conversation] calls run on [Dispatchers.IO]. */
@JvmInline
value class ConversationIo(private val conversation: Conversation) {
    /**
     * Saves the conversation to [path], encrypted with the key `vazhi-sessions` of [keys]
     * (created on first use): its history and, when the model's cache still holds it, its KV
     * state. Call it when the app goes to the background. Throws `VazhiException.Busy` while
     * an answer runs.
     */
    suspend fun save(path: String, keys: KeyProvider): SavedSession =
        withContext(Dispatchers.IO) { conversation.save(path, keys) }
}

/** [Vazhi] calls run on [Dispatchers.IO]. */
@JvmInline
value class VazhiIo(private val vazhi: Vazhi) {
    /**
     * Restores a conversation saved with [ConversationIo.save]. `restored.kind` says how much
     * came back; a damaged, altered, cut or foreign file falls back to the history (or to an
     * empty conversation) and `restored.reason` says why.
     */
    suspend fun restoreConversation(path: String, keys: KeyProvider): RestoredConversation =
        withContext(Dispatchers.IO) { vazhi.restoreConversation(path, keys) }
}
