//! What an app binding holds: the assistant over one data directory ([`App`]: packs imported at
//! start, a model loaded by path or by verified catalog id, unload/reload, memory pressure) and
//! the model manager ([`Models`]: the catalog, downloads, the offline switch). The uniffi layer
//! (`vazhi-ffi`) and the Flutter example's bridge both wrap these, so that neither holds logic
//! of its own.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::assistant::{
    AnswerHandle, Assistant, AssistantConfig, AssistantError, AssistantEvent, RestoredConversation,
};
use crate::builtin_tools::builtin_tools;
use crate::data_dir::DataDir;
use crate::download::{
    storage, Catalog, DeviceInfo, DownloadConfig, DownloadError, DownloadEvent, DownloadHandle,
    Downloader, RunningDownloads,
};
use crate::engine::tools::check_tools;
use crate::engine::{
    ConstraintError, Engine, EngineConfig, EngineError, GenerateParams, OutputConstraint,
    ToolChoice, ToolError, ToolSpec, ValidationPolicy,
};
use crate::error_kind::ErrorKind;
use crate::fact_guard::FactPolicy;
use crate::knowledge::{KnowledgeBase, KnowledgeError};
use crate::router::{Router, RouterError};
use crate::sessions::SessionError;
use crate::signing::TrustPolicy;

/// Why opening the assistant, or changing its model, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The question is empty or only whitespace (refused with or without a model).
    #[error("the question is empty")]
    EmptyQuestion,
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The knowledge base or a pack failed.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    /// The router rules are invalid.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// The catalog is invalid or the catalog model is not installed and verified.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The model could not be loaded.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The answer could not be started.
    #[error(transparent)]
    Assistant(#[from] AssistantError),
    /// A conversation could not be saved or its file not opened.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl AppError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppError::EmptyQuestion => ErrorKind::InvalidInput,
            AppError::Io(_) => ErrorKind::Io,
            AppError::Knowledge(e) => e.kind(),
            AppError::Router(e) => e.kind(),
            AppError::Download(e) => e.kind(),
            AppError::Engine(e) => e.kind(),
            AppError::Assistant(e) => e.kind(),
            AppError::Session(e) => e.kind(),
        }
    }
}

/// How hard the operating system is asking for memory back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum MemoryPressure {
    /// The app went to the background (Android `TRIM_MEMORY_UI_HIDDEN`).
    Background,
    /// Memory is getting low (Android `TRIM_MEMORY_RUNNING_LOW`).
    Moderate,
    /// Memory is critically low (Android `TRIM_MEMORY_RUNNING_CRITICAL`, iOS memory warning).
    #[default]
    Critical,
}

/// How to open an [`App`].
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// The app's data directory (models/, downloads/, knowledge.db, feedback.db, keys/).
    pub data_dir: PathBuf,
    /// A GGUF file to load (a developer's own file).
    pub model_path: Option<PathBuf>,
    /// An installed catalog model to load, only if it is the verified file. Ignored when
    /// `model_path` is set.
    pub model_id: Option<String>,
    /// The model catalog (JSON); default: the catalog built into Vazhi.
    pub catalog_json: Option<String>,
    /// `catalog_json`'s detached signature (a signature file's text, `docs/formats.md`).
    pub catalog_signature: Option<String>,
    /// Knowledge-pack directories to import at start (skipped when that version, or a newer
    /// one, is installed: see [`App::startup_packs`]).
    pub pack_dirs: Vec<PathBuf>,
    /// Which packs and catalogs are accepted (default: only what Vazhi ships).
    pub trust: TrustPolicy,
    /// Router rules (TOML); default: the rules built into Vazhi.
    pub rules_toml: Option<String>,
    /// llama.cpp threads; default: physical cores.
    pub threads: Option<usize>,
    /// Context size in tokens; default: chosen by the memory plan.
    pub context_tokens: Option<u32>,
    /// Memory budget for model + cache, MiB; the context shrinks to fit.
    pub memory_budget_mb: Option<u64>,
    /// Most tokens per answer (default 256).
    pub max_tokens: Option<u32>,
    /// System prompt for model answers.
    pub system_prompt: Option<String>,
    /// Memory pressure at or above which [`App::on_memory_pressure`] unloads the model.
    pub unload_at: MemoryPressure,
    /// Largest model file accepted, in bytes; default: [`ValidationPolicy`]'s.
    pub max_model_bytes: Option<u64>,
    /// A chat template (Jinja source) to use instead of the model's own: for tools with a
    /// model whose template does not render them ([`EngineConfig::chat_template`]).
    pub chat_template: Option<String>,
    /// What the fact guard does with a sentence whose facts are in neither the question nor
    /// the cards ([`FactPolicy`]; default: mark it).
    pub fact_policy: FactPolicy,
}

impl AppConfig {
    /// A config over `data_dir` with every other setting at its default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    fn assistant_config(&self) -> AssistantConfig {
        let mut c = AssistantConfig::default();
        if let Some(n) = self.max_tokens {
            c.params.max_tokens = n;
        }
        if let Some(p) = &self.system_prompt {
            c.system_prompt = p.clone();
        }
        c.fact_policy = self.fact_policy;
        c
    }

    fn engine_config(&self) -> EngineConfig {
        let mut policy = ValidationPolicy::default();
        if let Some(max) = self.max_model_bytes {
            policy.max_file_bytes = max;
        }
        EngineConfig {
            threads: self.threads,
            n_ctx: self.context_tokens,
            ram_budget_bytes: self.memory_budget_mb.map(|mb| mb << 20),
            policy,
            chat_template: self.chat_template.clone(),
            ..EngineConfig::default()
        }
    }
}

/// Per-question settings; `None` keeps the assistant's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AskOverrides {
    /// Most tokens the model may write.
    pub max_tokens: Option<u32>,
    /// Sampling temperature (0 = greedy).
    pub temperature: Option<f32>,
    /// Random seed.
    pub seed: Option<u32>,
    /// A JSON Schema the model's answer must follow. The model then answers even a question
    /// the knowledge base matches exactly, grounded on the record (see
    /// [`OutputConstraint`]).
    pub json_schema: Option<String>,
    /// A GBNF grammar (start rule `root`) the model's answer must follow; not with
    /// `json_schema`.
    pub grammar: Option<String>,
    /// The app's tools the model may call (see [`AssistantEvent::ToolCall`]); not with a
    /// schema or grammar. The model's chat template must render tools.
    pub tools: Vec<ToolSpec>,
    /// Offer the built-in knowledge tools `lookup(pack, key)` and `search(query)`
    /// ([`crate::builtin_tools`]).
    pub builtin_tools: bool,
    /// The model's first move must be a tool call ([`ToolChoice::Required`]); what follows
    /// the results is its choice. Off: it calls when it decides to.
    pub require_tool_call: bool,
    /// Send the model's reasoning as [`AssistantEvent::Reasoning`] (hidden otherwise).
    pub show_reasoning: bool,
    /// The `enable_thinking` variable for chat templates that read it.
    pub enable_thinking: Option<bool>,
}

impl AskOverrides {
    /// The output constraint these overrides ask for, checked (a schema is converted to a
    /// grammar; the grammar itself is parsed when the answer starts).
    pub fn constraint(&self) -> Result<Option<OutputConstraint>, ConstraintError> {
        let constraint = match (&self.json_schema, &self.grammar) {
            (Some(_), Some(_)) => return Err(ConstraintError::Both),
            (Some(schema), None) => Some(OutputConstraint::JsonSchema(schema.clone())),
            (None, Some(grammar)) => Some(OutputConstraint::Grammar(grammar.clone())),
            (None, None) => None,
        };
        if let Some(c) = &constraint {
            c.to_gbnf()?;
        }
        Ok(constraint)
    }

    /// The settings for asking `question`: a blank question and an unusable constraint are
    /// refused here, before anything starts; then `base` with these overrides applied. Every
    /// ask path (the app's, a conversation's in each binding) goes through it.
    pub fn prepare(
        &self,
        question: &str,
        base: GenerateParams,
    ) -> Result<GenerateParams, AppError> {
        check_question(question)?;
        self.constraint().map_err(EngineError::from)?;
        let params = self.apply(base);
        if !params.tools.is_empty() {
            check_tools(&params.tools).map_err(EngineError::from)?;
            if params.constraint.is_some() {
                return Err(EngineError::from(ToolError::WithConstraint).into());
            }
        }
        Ok(params)
    }

    /// `base` with these overrides applied. A constraint is taken as given: check it first
    /// with [`constraint`](Self::constraint) ([`prepare`](Self::prepare) does).
    pub fn apply(&self, mut base: GenerateParams) -> GenerateParams {
        match (&self.json_schema, &self.grammar) {
            (Some(schema), _) => {
                base.constraint = Some(OutputConstraint::JsonSchema(schema.clone()));
            }
            (None, Some(grammar)) => {
                base.constraint = Some(OutputConstraint::Grammar(grammar.clone()))
            }
            (None, None) => {}
        }
        if let Some(n) = self.max_tokens {
            base.max_tokens = n;
        }
        if let Some(t) = self.temperature {
            base.sampling.temperature = t;
        }
        if let Some(s) = self.seed {
            base.sampling.seed = s;
        }
        if self.builtin_tools {
            base.tools.extend(builtin_tools());
        }
        base.tools.extend(self.tools.iter().cloned());
        if self.require_tool_call && !base.tools.is_empty() {
            base.tool_choice = ToolChoice::Required;
        }
        base.show_reasoning |= self.show_reasoning;
        if self.enable_thinking.is_some() {
            base.enable_thinking = self.enable_thinking;
        }
        base
    }
}

/// Refuses a blank question at once, with or without a model.
pub fn check_question(text: &str) -> Result<(), AppError> {
    if text.trim().is_empty() {
        return Err(AppError::EmptyQuestion);
    }
    Ok(())
}

/// The catalog in `json` (with its detached `signature`, checked against `trust`), or the
/// built-in one.
pub fn catalog(
    json: Option<&str>,
    signature: Option<&str>,
    trust: &TrustPolicy,
) -> Result<Catalog, DownloadError> {
    Ok(match json {
        Some(json) => Catalog::from_json_trusted(json, signature, trust),
        None => Catalog::builtin(),
    }?)
}

/// The assistant of one data directory, whose model can be unloaded and loaded again. Cheap to
/// share across threads; each question works on a snapshot ([`App::assistant`]).
#[derive(Debug)]
pub struct App {
    data_dir: DataDir,
    config: AppConfig,
    assistant: RwLock<Assistant>,
    startup_packs: Vec<StartupPack>,
}

/// What [`App::open`] did with one of the config's `pack_dirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupPack {
    /// The directory.
    pub dir: PathBuf,
    /// The pack's name.
    pub name: String,
    /// The version installed now.
    pub installed: String,
    /// The version in the directory.
    pub offered: String,
    /// Whether it was imported (`false`: skipped, the installed version is as new or newer).
    pub imported: bool,
}

impl App {
    /// Opens the data directory, imports `pack_dirs` (a version already installed is skipped),
    /// and loads the model if the config names one. Blocking: loading a model takes a second or
    /// more.
    pub fn open(config: AppConfig) -> Result<Self, AppError> {
        let _span = tracing::info_span!("app_open").entered();
        let data_dir = DataDir::new(&config.data_dir);
        data_dir.create()?;
        let kb = KnowledgeBase::open(&data_dir.knowledge_db())?;
        let mut startup_packs = Vec::with_capacity(config.pack_dirs.len());
        for dir in &config.pack_dirs {
            let outcome = match kb.import_dir(dir, &config.trust) {
                Ok(report) => StartupPack {
                    dir: dir.clone(),
                    name: report.name,
                    installed: report.version.clone(),
                    offered: report.version,
                    imported: true,
                },
                // The same version, or a newer one from an update since the app was built:
                // keep what is installed.
                Err(KnowledgeError::NotAnUpgrade {
                    name,
                    installed,
                    offered,
                }) => {
                    tracing::info!(pack = %name, %installed, %offered, "start-up pack skipped: installed is as new or newer");
                    StartupPack {
                        dir: dir.clone(),
                        name,
                        installed,
                        offered,
                        imported: false,
                    }
                }
                Err(e) => return Err(e.into()),
            };
            startup_packs.push(outcome);
        }
        drop(kb);
        let engine = load_engine(&config, &data_dir)?;
        let assistant = build(&config, &data_dir, engine)?;
        Ok(Self {
            data_dir,
            config,
            assistant: RwLock::new(assistant),
            startup_packs,
        })
    }

    /// What became of each of the config's `pack_dirs` at start, in order.
    pub fn startup_packs(&self) -> &[StartupPack] {
        &self.startup_packs
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// The assistant as it is now (a cheap handle; a later unload does not change it, but its
    /// answers in flight then end with `ModelUnloaded`).
    pub fn assistant(&self) -> Assistant {
        self.assistant
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a model is loaded.
    pub fn has_model(&self) -> bool {
        self.assistant().has_model()
    }

    /// The generation settings for one question: the assistant's defaults with `overrides`.
    pub fn params(&self, overrides: &AskOverrides) -> GenerateParams {
        overrides.apply(self.assistant().config().params.clone())
    }

    /// Answers one question on a thread of its own, events to `sink` (see
    /// [`Assistant::ask_into`]): the bindings adapt these events and hold no thread of their
    /// own. A blank question is refused here, before anything starts.
    pub fn ask_into(
        &self,
        text: &str,
        overrides: &AskOverrides,
        sink: impl FnMut(AssistantEvent) -> bool + Send + 'static,
    ) -> Result<AnswerHandle, AppError> {
        let assistant = self.assistant();
        let params = overrides.prepare(text, assistant.config().params.clone())?;
        Ok(assistant.ask_into(text, &params, sink)?)
    }

    /// Restores a conversation saved with [`Conversation::save`](crate::assistant::Conversation::save)
    /// (see [`Assistant::restore_conversation`]): with its KV state when the running model,
    /// llama.cpp, context and template are the ones it was saved with, otherwise from its text
    /// history, with the reason.
    pub fn restore_conversation(
        &self,
        path: impl AsRef<std::path::Path>,
        keys: &dyn crate::feedback::KeyProvider,
    ) -> Result<RestoredConversation, AppError> {
        Ok(self.assistant().restore_conversation(path, keys)?)
    }

    /// Frees the model's memory now. Later questions are answered from the knowledge base
    /// (`model_unavailable`), and answers in progress end with `ModelUnloaded`. Idempotent.
    pub fn unload(&self) -> Result<(), AppError> {
        let mut assistant = self
            .assistant
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(engine) = assistant.engine() {
            engine.unload();
            *assistant = build(&self.config, &self.data_dir, None)?;
            tracing::info!("model unloaded");
        }
        Ok(())
    }

    /// Loads the configured model again after [`unload`](Self::unload) (no-op if loaded).
    /// Blocking.
    pub fn reload(&self) -> Result<(), AppError> {
        if self.has_model() {
            return Ok(());
        }
        let engine = load_engine(&self.config, &self.data_dir)?;
        let assistant = build(&self.config, &self.data_dir, engine)?;
        *self
            .assistant
            .write()
            .unwrap_or_else(PoisonError::into_inner) = assistant;
        Ok(())
    }

    /// The operating system asks for memory: at or above the config's `unload_at` the model is
    /// unloaded; below it nothing is freed (the knowledge base needs little). Returns whether
    /// the model was unloaded.
    pub fn on_memory_pressure(&self, level: MemoryPressure) -> Result<bool, AppError> {
        if level >= self.config.unload_at && self.has_model() {
            self.unload()?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Loads the model `config` names, if any.
fn load_engine(config: &AppConfig, data_dir: &DataDir) -> Result<Option<Engine>, AppError> {
    if let Some(path) = &config.model_path {
        return Ok(Some(Engine::load(path, config.engine_config())?));
    }
    let Some(id) = &config.model_id else {
        return Ok(None);
    };
    let catalog = catalog(
        config.catalog_json.as_deref(),
        config.catalog_signature.as_deref(),
        &config.trust,
    )?;
    let downloader = Downloader::new(catalog, DownloadConfig::new(data_dir.clone()));
    let model = downloader.installed(id)?;
    Ok(Some(Engine::load_verified(&model, config.engine_config())?))
}

/// The assistant over the data directory's knowledge base, with `engine` if given.
fn build(
    config: &AppConfig,
    data_dir: &DataDir,
    engine: Option<Engine>,
) -> Result<Assistant, AppError> {
    let kb = KnowledgeBase::open(&data_dir.knowledge_db())?;
    let router = match &config.rules_toml {
        Some(toml) => Router::from_toml_str(toml)?,
        None => Router::builtin()?,
    };
    Ok(Assistant::new(
        kb,
        router,
        engine,
        config.assistant_config(),
    ))
}

/// How to build [`Models`].
#[derive(Debug, Clone, Default)]
pub struct ModelsConfig {
    /// The app's data directory.
    pub data_dir: PathBuf,
    /// The model catalog (JSON); default: the catalog built into Vazhi.
    pub catalog_json: Option<String>,
    /// `catalog_json`'s detached signature (a signature file's text, `docs/formats.md`).
    pub catalog_signature: Option<String>,
    /// Which catalogs are accepted (default: only the built-in one).
    pub trust: TrustPolicy,
    /// Hosts allowed besides the catalog's (an app's own mirror).
    pub extra_hosts: Vec<String>,
    /// Open no socket: downloads fail at once with `Offline`.
    pub offline: bool,
    /// The device's RAM in MiB (checked against the catalog's `min_ram_mb`); default: what
    /// the operating system reports.
    pub ram_mb: Option<u64>,
    /// Free storage the app measured, in bytes (otherwise the filesystem is asked).
    pub free_storage_bytes: Option<u64>,
    /// Time without data before a connection is retried (default 30 s; at least 1 s).
    pub read_timeout: Option<Duration>,
    /// Allow plain http to loopback hosts. Tests only.
    pub allow_loopback_http: bool,
}

impl ModelsConfig {
    /// A config over `data_dir` with every other setting at its default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    fn downloader(&self) -> Result<Downloader, DownloadError> {
        let mut c = DownloadConfig::new(DataDir::new(&self.data_dir));
        c.extra_hosts = self.extra_hosts.clone();
        c.offline = self.offline;
        c.allow_loopback_http = self.allow_loopback_http;
        c.device = DeviceInfo {
            ram_mb: self.ram_mb.or_else(storage::physical_ram_mb),
            free_storage_bytes: self.free_storage_bytes,
        };
        if let Some(t) = self.read_timeout {
            c.read_idle_timeout = t.max(Duration::from_secs(1));
        }
        Ok(Downloader::new(
            catalog(
                self.catalog_json.as_deref(),
                self.catalog_signature.as_deref(),
                &self.trust,
            )?,
            c,
        ))
    }
}

/// The catalog and the models on this device, downloads on threads of their own
/// ([`start_download`](Self::start_download)), and an offline switch that pauses the downloads
/// running and holds for the next ones.
#[derive(Debug)]
pub struct Models {
    config: RwLock<ModelsConfig>,
    downloader: RwLock<Arc<Downloader>>,
    /// Downloads started here and still running: going offline pauses them.
    running: RunningDownloads,
}

impl Models {
    /// A manager over `config.data_dir` and the catalog (fails on an invalid catalog).
    pub fn new(config: ModelsConfig) -> Result<Self, DownloadError> {
        let downloader = config.downloader()?;
        Ok(Self {
            config: RwLock::new(config),
            downloader: RwLock::new(Arc::new(downloader)),
            running: RunningDownloads::new(),
        })
    }

    /// The downloader as configured now.
    pub fn downloader(&self) -> Arc<Downloader> {
        Arc::clone(
            &self
                .downloader
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Switches the offline setting: while on, no download opens a socket. Switching it on
    /// pauses the downloads [`start_download`](Self::start_download) is running (each ends with
    /// `Paused`, keeping its partial file); download again once online to resume.
    pub fn set_offline(&self, offline: bool) -> Result<(), DownloadError> {
        {
            let mut config = self.config.write().unwrap_or_else(PoisonError::into_inner);
            config.offline = offline;
            let downloader = config.downloader()?;
            *self
                .downloader
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(downloader);
        }
        // The setting first, then the pause: a download starting meanwhile either reads the
        // new setting or is already tracked (see `start_download`).
        if offline {
            let paused = self.running.pause_all();
            if paused > 0 {
                tracing::info!(paused, "offline: running downloads paused");
            }
        }
        Ok(())
    }

    /// Starts (or resumes) downloading model `id` on a thread of its own, and returns at once:
    /// `sink` gets throttled progress, then one last event (`Finished` with installed, paused
    /// or cancelled, or `Failed`). A sink that refuses a progress event (returns `false` or
    /// panics) pauses the download. Going offline pauses it. An error only if no thread could
    /// be started.
    pub fn start_download(
        &self,
        id: &str,
        sink: impl FnMut(DownloadEvent) -> bool + Send + 'static,
    ) -> Result<DownloadHandle, DownloadError> {
        let handle = DownloadHandle::new();
        self.start_download_on(&handle, id, sink)?;
        Ok(handle)
    }

    /// [`start_download`](Self::start_download) controlled by `handle`, made before (a binding
    /// whose app holds the handle before the call).
    pub fn start_download_on(
        &self,
        handle: &DownloadHandle,
        id: &str,
        sink: impl FnMut(DownloadEvent) -> bool + Send + 'static,
    ) -> Result<(), DownloadError> {
        // Tracked before the downloader (and its offline setting) is read: see `set_offline`.
        let tracked = self.running.track(handle.control());
        crate::download::task::start(self.downloader(), id, tracked, handle, sink)
    }

    /// Whether the offline setting is on.
    pub fn is_offline(&self) -> bool {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .offline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::DownloadControl;

    #[test]
    fn a_blank_question_is_refused_and_overrides_replace_only_what_they_set() {
        assert!(matches!(
            check_question(" \n\t"),
            Err(AppError::EmptyQuestion)
        ));
        assert!(check_question("வணக்கம்").is_ok());
        let base = GenerateParams::default();
        let p = AskOverrides {
            max_tokens: Some(7),
            ..AskOverrides::default()
        }
        .apply(base.clone());
        assert_eq!(p.max_tokens, 7);
        assert_eq!(p.sampling.seed, base.sampling.seed);
    }

    /// A copy of the shipped `thirukkural` pack with another version, signed by `key`.
    fn kural_pack(
        dir: &std::path::Path,
        version: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> PathBuf {
        let shipped =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/packs/thirukkural");
        let out = dir.join(format!("kural-{version}"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(shipped.join("records.jsonl"), out.join("records.jsonl")).unwrap();
        let toml = std::fs::read_to_string(shipped.join("pack.toml")).unwrap();
        let toml: String = toml
            .lines()
            .map(|l| {
                if l.starts_with("version") {
                    format!("version = \"{version}\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(out.join("pack.toml"), toml).unwrap();
        crate::knowledge::trust::sign_pack(&out, key).unwrap();
        out
    }

    #[test]
    fn start_up_keeps_a_newer_installed_pack_and_survives_downgrades_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let config = |packs: Vec<PathBuf>| AppConfig {
            pack_dirs: packs,
            trust: TrustPolicy::signed_by(
                crate::signing::TrustedKeys::from_hex(&[crate::signing::public_key_hex(&key)])
                    .unwrap(),
            ),
            ..AppConfig::new(dir.path().join("data"))
        };
        let v1 = kural_pack(dir.path(), "1.0.0", &key);
        let v2 = kural_pack(dir.path(), "2.0.0", &key);
        let imported = |app: &App| -> Vec<(String, bool)> {
            app.startup_packs()
                .iter()
                .map(|p| (p.installed.clone(), p.imported))
                .collect()
        };
        let app = App::open(config(vec![v1.clone()])).unwrap();
        assert_eq!(imported(&app), [("1.0.0".to_owned(), true)]);
        drop(app);
        let db = DataDir::new(dir.path().join("data")).knowledge_db();
        let backup = dir.path().join("backup.db");
        std::fs::copy(&db, &backup).unwrap();
        // An update installs 2.0.0 (the app's own update path, e.g. a downloaded pack).
        KnowledgeBase::open(&db)
            .unwrap()
            .import_dir(&v2, &config(vec![]).trust)
            .unwrap();
        // The app still passes its bundled 1.0.0 at start: it opens, keeps 2.0.0, says so.
        let app = App::open(config(vec![v1.clone()])).unwrap();
        let startup = &app.startup_packs()[0];
        assert_eq!(
            (
                startup.installed.as_str(),
                startup.offered.as_str(),
                startup.imported
            ),
            ("2.0.0", "1.0.0", false)
        );
        drop(app);
        // A restore from a backup taken before the update: the bundled pack is newer again
        // than nothing, and 1.0.0 is what the backup holds.
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        std::fs::copy(&backup, &db).unwrap();
        let app = App::open(config(vec![v2.clone()])).unwrap();
        assert_eq!(imported(&app), [("2.0.0".to_owned(), true)]);
        let kb = KnowledgeBase::open(&db).unwrap();
        assert_eq!(kb.packs().unwrap()[0].version, "2.0.0");
        drop(app);
        // The same version again is skipped, as before.
        let app = App::open(config(vec![v2])).unwrap();
        assert_eq!(imported(&app), [("2.0.0".to_owned(), false)]);
    }

    #[test]
    fn an_app_without_a_model_opens_and_memory_pressure_frees_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::open(AppConfig::new(dir.path())).unwrap();
        assert!(!app.has_model());
        assert!(!app.on_memory_pressure(MemoryPressure::Critical).unwrap());
        app.unload().unwrap();
        app.reload().unwrap();
        assert!(!app.has_model());
    }

    #[test]
    fn the_offline_switch_takes_effect_for_the_next_download() {
        let dir = tempfile::tempdir().unwrap();
        let models = Models::new(ModelsConfig::new(dir.path())).unwrap();
        assert!(!models.is_offline());
        models.set_offline(true).unwrap();
        assert!(models.is_offline());
        let id = models.downloader().catalog().entries()[0].id.clone();
        let err = models
            .downloader()
            .download_blocking(&id, &DownloadControl::new(), |_| {})
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Offline);
    }

    #[test]
    fn whether_a_model_fits_asks_the_os_for_ram_unless_the_app_says() {
        let ram = storage::physical_ram_mb().unwrap();
        assert!(ram > 64, "{ram} MiB");
        let catalog = |min_ram_mb: u64| {
            format!(
                r#"{{"format":1,"models":[{{"id":"m","urls":["https://example.org/m.gguf"],
                "sha256":"{}","size":1024,"quant":"Q4_K_M","arch":"llama","context_length":2048,
                "min_ram_mb":{min_ram_mb},"licence":"MIT"}}]}}"#,
                "ab".repeat(32)
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let models = |min_ram_mb, ram_mb| {
            Models::new(ModelsConfig {
                catalog_json: Some(catalog(min_ram_mb)),
                trust: TrustPolicy::any(),
                ram_mb,
                ..ModelsConfig::new(dir.path())
            })
            .unwrap()
        };
        models(ram / 2, None).downloader().check_fits("m").unwrap();
        let err = models(ram * 2, None)
            .downloader()
            .check_fits("m")
            .unwrap_err();
        assert!(matches!(err, DownloadError::NotEnoughRam { .. }), "{err}");
        models(ram * 2, Some(ram * 4))
            .downloader()
            .check_fits("m")
            .unwrap();
    }
}
