//! The assistant that `ask` and `chat` answer with, built through [`vazhi_core::app::App`]:
//! [`config`] is the one place that turns the command line into an [`AppConfig`] (data
//! directory, model path or catalog id, catalog and its signature, trust policy, engine and
//! answer settings), and [`open`] opens it.

use anyhow::Context as _;
use vazhi_core::app::{App, AppConfig, AppError};
use vazhi_core::assistant::Assistant;
use vazhi_core::data_dir::DataDir;
use vazhi_core::download::DownloadError;

use super::{trust, EngineArgs, GenerateArgs};
use crate::model_path::{self, NoDefaultModel};
use crate::output::errln;

/// Which model a command wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelUse {
    /// None: answers come from the knowledge base alone (`ask --no-model`).
    None,
    /// The model the options name; without `--model`/`--model-id`, the default chat model if it
    /// is installed, else none (said on stderr) and the knowledge base answers alone.
    IfInstalled,
    /// The model the options name, or the default chat model; an error without one.
    Required,
}

/// The [`AppConfig`] the command line describes, over `data_dir`.
///
/// `--catalog` (or `VAZHI_CATALOG`) and its `.sig` are read only for `--model-id`. The CLI has
/// no router-rules option: the built-in rules answer.
pub fn config(
    engine: &EngineArgs,
    generate: &GenerateArgs,
    data_dir: &DataDir,
    model: ModelUse,
) -> anyhow::Result<AppConfig> {
    let mut config = AppConfig {
        trust: trust::policy().clone(),
        threads: engine.threads,
        context_tokens: engine.ctx,
        memory_budget_mb: engine.ram_budget_mb,
        max_tokens: Some(generate.max_tokens),
        system_prompt: generate.system.clone(),
        fact_policy: generate.fact_guard,
        chat_template: engine
            .chat_template
            .as_deref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading chat template {}", path.display()))
            })
            .transpose()?,
        ..AppConfig::new(data_dir.root())
    };
    if model == ModelUse::None {
        return Ok(config);
    }
    if let Some(id) = &engine.model_id {
        config.model_id = Some(id.clone());
        if let Some(path) = &engine.catalog {
            let (json, signature) = trust::read_catalog(path)?;
            config.catalog_json = Some(json);
            config.catalog_signature = signature;
        }
        return Ok(config);
    }
    match model_path::resolve(engine.model.as_deref(), Some(data_dir)) {
        Ok(path) => config.model_path = Some(path),
        Err(NoDefaultModel { .. }) if model == ModelUse::IfInstalled => {
            errln!("vazhi: no model installed; answering from the knowledge base only");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(config)
}

/// Opens the assistant `config` describes (loading its model, if it names one), with model
/// files up to `engine.max_model_mb` accepted.
pub fn open(mut config: AppConfig, engine: &EngineArgs) -> anyhow::Result<Assistant> {
    config.max_model_bytes = Some(engine.max_model_mb << 20);
    let loading = loading(&config);
    let app = App::open(config).map_err(|e| {
        let context = match (&e, &engine.catalog) {
            (AppError::Download(DownloadError::Catalog(_)), Some(path)) => {
                format!("catalog {}", path.display())
            }
            (AppError::Engine(_) | AppError::Download(_), _) => loading,
            _ => "opening the data directory".to_owned(),
        };
        anyhow::Error::new(e).context(context)
    })?;
    Ok(app.assistant())
}

/// What loading `config`'s model is called in an error message.
fn loading(config: &AppConfig) -> String {
    match (&config.model_path, &config.model_id) {
        (Some(path), _) => format!("loading {}", path.display()),
        (None, Some(id)) => format!("loading catalog model {id}"),
        (None, None) => "loading the model".to_owned(),
    }
}
