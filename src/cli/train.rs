//! `autoenc train`: flags to params, a progress bar over epochs, and the model file.
//!
//! The defaults are the library's ([`autoenc::model::params::defaults`]): a flag that is not given
//! leaves the params' own value, and the `[default: ...]` in a flag's help is printed from the same
//! constant, so the help cannot drift from what training does.

use std::path::PathBuf;

use anyhow::{Context, bail};
use autoenc::io::table::{FeatureSelection, model_features, non_feature_columns, read_table, training_features};
use autoenc::model::params::defaults;
use autoenc::{
    Activation, Autoencoder, AutoencoderParams, EarlyStopping, LatentSize, Loss, Noise, OptimizerKind, Scaling,
    Sparsity, Variant,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::{FEATURES_COLUMN_KEY, FeatureArgs};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Training data: .parquet, .csv or .arrow/.ipc/.feather.
    pub input: PathBuf,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Where to write the model file.
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(
        long,
        help = with_default(
            "Family member: plain, denoising, sparse, contractive or variational",
            defaults::VARIANT.name()
        )
    )]
    pub variant: Option<String>,
    #[arg(
        long,
        help = with_default(
            "Denoising corruption: masking:FRACTION, gaussian:STD or salt-pepper:FRACTION",
            noise_spec(Noise::default())
        )
    )]
    pub noise: Option<String>,
    /// Sparse constraint: topk:K, l1:LAMBDA or kl:RHO:BETA [default: topk with half the code].
    #[arg(long)]
    pub sparsity: Option<String>,
    #[arg(long, help = with_default("Contractive penalty weight lambda", defaults::CONTRACTIVE_LAMBDA))]
    pub contractive_lambda: Option<f64>,
    #[arg(long, help = with_default("Variational KL weight beta", format!("{:?}", defaults::VARIATIONAL_BETA)))]
    pub beta: Option<f64>,
    /// Code size: a number, or `auto` (PCA explained variance) [default: auto].
    #[arg(long)]
    pub latent: Option<String>,
    #[arg(long, help = with_default("Explained-variance target for `--latent auto`", defaults::EXPLAINED_VARIANCE))]
    pub explained_variance: Option<f64>,
    /// Encoder hidden sizes, e.g. `32,16`, or `none` [default: automatic].
    #[arg(long)]
    pub hidden: Option<String>,
    /// Decoder hidden sizes, code side first [default: the encoder's mirrored].
    #[arg(long)]
    pub decoder_hidden: Option<String>,
    #[arg(
        long,
        help = with_default(
            "Hidden activation: relu, leaky_relu, elu, tanh, sigmoid, identity",
            defaults::ACTIVATION.name()
        )
    )]
    pub activation: Option<Activation>,
    /// Code activation [default: identity; sigmoid for KL sparsity].
    #[arg(long)]
    pub code_activation: Option<Activation>,
    #[arg(long, help = with_default("Output activation: identity or sigmoid", defaults::OUTPUT_ACTIVATION.name()))]
    pub output_activation: Option<Activation>,
    #[arg(long, help = with_default("Reconstruction loss: mse or bce", serde_name(defaults::LOSS)))]
    pub loss: Option<String>,
    #[arg(long, help = with_default("Feature scaling: standard, minmax or none", serde_name(defaults::SCALING)))]
    pub scaling: Option<String>,
    #[arg(long, help = with_default("Optimiser: adam or sgd", serde_name(defaults::OPTIMIZER)))]
    pub optimizer: Option<String>,
    #[arg(long, help = with_default("Learning rate", defaults::LEARNING_RATE))]
    pub lr: Option<f64>,
    #[arg(long, help = with_default("SGD momentum", defaults::MOMENTUM))]
    pub momentum: Option<f64>,
    #[arg(long, help = with_default("Decoupled weight decay", defaults::WEIGHT_DECAY))]
    pub weight_decay: Option<f64>,
    #[arg(
        long,
        help = with_default(
            "Share of each batch's worst-reconstructed rows left out of the loss (robust training)",
            defaults::TRIM_FRACTION
        )
    )]
    pub trim_fraction: Option<f64>,
    #[arg(long, help = with_default("Passes over the data", defaults::EPOCHS))]
    pub epochs: Option<usize>,
    #[arg(long, help = with_default("Rows per step", defaults::BATCH_SIZE))]
    pub batch_size: Option<usize>,
    #[arg(long, help = with_default("Share of rows held out for the validation loss", defaults::VALIDATION_FRACTION))]
    pub validation_fraction: Option<f64>,
    /// Early-stopping patience in epochs (needs --validation-fraction).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Early-stopping minimum relative improvement.
    #[arg(long, default_value_t = 0.0)]
    pub min_improvement: f64,
    #[arg(long, help = with_default("Expected share of anomalies; sets the threshold", defaults::CONTAMINATION))]
    pub contamination: Option<f64>,
    /// Explicit score threshold (overrides --contamination).
    #[arg(long)]
    pub threshold: Option<f64>,
    #[arg(long, help = with_default("Random seed", defaults::SEED))]
    pub seed: Option<u64>,
    #[arg(
        long,
        help = with_default(
            "Values a categorical (text or boolean) feature keeps, most frequent first; the rest share one \
             \"other\" code",
            defaults::MAX_CATEGORIES
        )
    )]
    pub max_categories: Option<usize>,
    /// Leave epoch durations out of the file, so the same seed and data give a byte-identical file.
    #[arg(long)]
    pub no_timings: bool,
    /// Any params as JSON, applied before the flags (e.g. '{"weight_decay": 1e-5}').
    #[arg(long)]
    pub params_json: Option<String>,
    /// Continue training this saved model (warm start) for --epochs more, with its own params and
    /// features; other model flags are refused.
    #[arg(long)]
    pub warm_start: Option<PathBuf>,
}

/// A flag's help line ending in the library default it falls back to.
fn with_default(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

/// The lowercase name a params enum has in files and `--params-json` (`mse`, `standard`, `adam`).
fn serde_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// `noise` written as `--noise` takes it.
fn noise_spec(noise: Noise) -> String {
    match noise {
        Noise::Masking { fraction } => format!("masking:{fraction}"),
        Noise::Gaussian { std } => format!("gaussian:{std}"),
        Noise::SaltPepper { fraction } => format!("salt-pepper:{fraction}"),
    }
}

fn parse_noise(spec: &str) -> anyhow::Result<Noise> {
    let (kind, v) = split_spec(spec);
    Ok(match kind.as_str() {
        "masking" => Noise::Masking { fraction: number(&v, 0, "masking fraction")? },
        "gaussian" => Noise::Gaussian { std: number(&v, 0, "gaussian std")? },
        "salt-pepper" | "salt_pepper" => Noise::SaltPepper { fraction: number(&v, 0, "salt-pepper fraction")? },
        other => bail!("unknown noise '{other}': use masking:F, gaussian:STD or salt-pepper:F"),
    })
}

fn parse_sparsity(spec: &str) -> anyhow::Result<Sparsity> {
    let (kind, v) = split_spec(spec);
    Ok(match kind.as_str() {
        "topk" | "top-k" | "top_k" => Sparsity::TopK { k: number(&v, 0, "top-k k")? },
        "l1" => Sparsity::L1 { lambda: number(&v, 0, "L1 lambda")? },
        "kl" => Sparsity::Kl { rho: number(&v, 0, "KL rho")?, beta: number(&v, 1, "KL beta")? },
        other => bail!("unknown sparsity '{other}': use topk:K, l1:LAMBDA or kl:RHO:BETA"),
    })
}

fn parse_sizes(text: &str) -> anyhow::Result<Vec<usize>> {
    if text == "none" || text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|s| s.trim().parse::<usize>().with_context(|| format!("bad layer size '{s}'"))).collect()
}

fn split_spec(spec: &str) -> (String, Vec<String>) {
    let mut parts = spec.split(':');
    let kind = parts.next().unwrap_or("").to_ascii_lowercase();
    (kind, parts.map(str::to_string).collect())
}

fn number<T: std::str::FromStr>(values: &[String], i: usize, what: &str) -> anyhow::Result<T> {
    values
        .get(i)
        .with_context(|| format!("{what} is missing"))?
        .parse::<T>()
        .map_err(|_| anyhow::anyhow!("{what} is not a number: '{}'", values[i]))
}

fn variant_from(args: &TrainArgs, latent_hint: Option<usize>) -> anyhow::Result<Option<Variant>> {
    // A variant's own flag names the variant; a flag for another variant is a mistake worth stopping on.
    let implied = match (args.noise.is_some(), args.sparsity.is_some()) {
        (true, true) => bail!("--noise (denoising) and --sparsity (sparse) belong to different variants"),
        (true, false) => Some("denoising"),
        (false, true) => Some("sparse"),
        (false, false) => None,
    };
    let Some(name) = args.variant.as_deref().or(implied) else {
        if args.contractive_lambda.is_some() || args.beta.is_some() {
            bail!("--contractive-lambda needs --variant contractive, --beta needs --variant variational");
        }
        return Ok(None);
    };
    let stray = [
        ("--noise", args.noise.is_some(), "denoising"),
        ("--sparsity", args.sparsity.is_some(), "sparse"),
        ("--contractive-lambda", args.contractive_lambda.is_some(), "contractive"),
        ("--beta", args.beta.is_some(), "variational"),
    ];
    for (flag, given, owner) in stray {
        if given && owner != name && !(owner == "variational" && name == "vae") {
            bail!("{flag} applies to --variant {owner}, not {name}");
        }
    }
    Ok(Some(match name {
        "plain" => Variant::Plain,
        "denoising" => {
            let noise = args.noise.as_deref().map(parse_noise).transpose()?.unwrap_or_default();
            Variant::Denoising { noise }
        }
        "sparse" => {
            let sparsity = match args.sparsity.as_deref() {
                Some(spec) => parse_sparsity(spec)?,
                None => Sparsity::default_top_k(latent_hint),
            };
            Variant::Sparse { sparsity }
        }
        "contractive" => {
            Variant::Contractive { lambda: args.contractive_lambda.unwrap_or(defaults::CONTRACTIVE_LAMBDA) }
        }
        "variational" | "vae" => Variant::Variational { beta: args.beta.unwrap_or(defaults::VARIATIONAL_BETA) },
        other => bail!("unknown variant '{other}': use plain, denoising, sparse, contractive or variational"),
    }))
}

/// Flags over defaults (and over `--params-json`).
pub fn params_from(args: &TrainArgs) -> anyhow::Result<AutoencoderParams> {
    let mut p = Autoencoder::params();
    if let Some(json) = &args.params_json {
        let value: serde_json::Value = serde_json::from_str(json).context("--params-json is not valid JSON")?;
        p = p.merge_json(&value)?;
    }
    let fixed_latent = match args.latent.as_deref() {
        None => None,
        Some("auto") => {
            p = p.latent(LatentSize::Auto {
                explained_variance: args.explained_variance.unwrap_or(defaults::EXPLAINED_VARIANCE),
            });
            None
        }
        Some(n) => {
            let k: usize = n.parse().map_err(|_| anyhow::anyhow!("--latent must be a number or 'auto', got '{n}'"))?;
            p = p.latent(LatentSize::Fixed(k));
            Some(k)
        }
    };
    if let (None, Some(v)) = (args.latent.as_deref(), args.explained_variance) {
        p = p.latent(LatentSize::Auto { explained_variance: v });
    }
    if let Some(variant) = variant_from(args, fixed_latent)? {
        p = p.variant(variant);
    }
    if let Some(h) = &args.hidden {
        p = p.hidden(Some(parse_sizes(h)?));
    }
    if let Some(h) = &args.decoder_hidden {
        p = p.decoder_hidden(Some(parse_sizes(h)?));
    }
    if let Some(a) = args.activation {
        p = p.activation(a);
    }
    if args.code_activation.is_some() {
        p = p.code_activation(args.code_activation);
    }
    if let Some(a) = args.output_activation {
        p = p.output_activation(a);
    }
    if let Some(l) = &args.loss {
        let loss = match l.as_str() {
            "mse" => Loss::Mse,
            "bce" => Loss::Bce,
            other => bail!("unknown loss '{other}': use mse or bce"),
        };
        p = p.loss(loss);
        if loss == Loss::Bce {
            // Cross-entropy needs outputs and targets in [0, 1]: sigmoid output and min-max scaling unless
            // the user chose otherwise (validation then explains what is wrong).
            if args.output_activation.is_none() {
                p = p.output_activation(Activation::Sigmoid);
            }
            if args.scaling.is_none() {
                p = p.scaling(Scaling::Minmax);
            }
        }
    }
    if let Some(s) = &args.scaling {
        p = p.scaling(match s.as_str() {
            "standard" => Scaling::Standard,
            "minmax" => Scaling::Minmax,
            "none" => Scaling::None,
            other => bail!("unknown scaling '{other}': use standard, minmax or none"),
        });
    }
    if let Some(o) = &args.optimizer {
        p = p.optimizer(match o.as_str() {
            "adam" => OptimizerKind::Adam,
            "sgd" => OptimizerKind::Sgd,
            other => bail!("unknown optimizer '{other}': use adam or sgd"),
        });
    }
    macro_rules! set {
        ($field:ident, $setter:ident) => {
            if let Some(v) = args.$field {
                p = p.$setter(v);
            }
        };
    }
    set!(lr, learning_rate);
    set!(momentum, momentum);
    set!(weight_decay, weight_decay);
    set!(trim_fraction, trim_fraction);
    set!(epochs, epochs);
    set!(batch_size, batch_size);
    set!(validation_fraction, validation_fraction);
    set!(contamination, contamination);
    set!(seed, seed);
    set!(max_categories, max_categories);
    if let Some(patience) = args.patience {
        p = p.early_stopping(Some(EarlyStopping { patience, min_relative_improvement: args.min_improvement }));
    }
    if args.threshold.is_some() {
        p = p.threshold(args.threshold);
    }
    if args.no_timings {
        p = p.record_timings(false);
    }
    Ok(p)
}

/// Flags that shape a new model; a warm start keeps the model's own and refuses these.
fn model_flags_given(args: &TrainArgs) -> Vec<&'static str> {
    let flags = [
        ("--variant", args.variant.is_some()),
        ("--noise", args.noise.is_some()),
        ("--sparsity", args.sparsity.is_some()),
        ("--contractive-lambda", args.contractive_lambda.is_some()),
        ("--beta", args.beta.is_some()),
        ("--latent", args.latent.is_some()),
        ("--explained-variance", args.explained_variance.is_some()),
        ("--hidden", args.hidden.is_some()),
        ("--decoder-hidden", args.decoder_hidden.is_some()),
        ("--activation", args.activation.is_some()),
        ("--code-activation", args.code_activation.is_some()),
        ("--output-activation", args.output_activation.is_some()),
        ("--loss", args.loss.is_some()),
        ("--scaling", args.scaling.is_some()),
        ("--optimizer", args.optimizer.is_some()),
        ("--lr", args.lr.is_some()),
        ("--momentum", args.momentum.is_some()),
        ("--weight-decay", args.weight_decay.is_some()),
        ("--trim-fraction", args.trim_fraction.is_some()),
        ("--batch-size", args.batch_size.is_some()),
        ("--validation-fraction", args.validation_fraction.is_some()),
        ("--patience", args.patience.is_some()),
        ("--contamination", args.contamination.is_some()),
        ("--threshold", args.threshold.is_some()),
        ("--seed", args.seed.is_some()),
        ("--max-categories", args.max_categories.is_some()),
        ("--params-json", args.params_json.is_some()),
    ];
    flags.into_iter().filter(|(_, given)| *given).map(|(flag, _)| flag).collect()
}

/// The feature list printed after training starts: names, a categorical one with its vocabulary size.
fn describe_features(names: &[String], kinds: &[autoenc::FeatureKind]) -> String {
    let described = names.iter().zip(kinds).map(|(name, kind)| match kind.vocabulary() {
        Some(vocabulary) => format!("{name} (categorical, {} values)", vocabulary.len()),
        None => name.clone(),
    });
    described.collect::<Vec<_>>().join(", ")
}

pub fn run(args: TrainArgs, progress: bool) -> anyhow::Result<()> {
    let warm = match &args.warm_start {
        Some(path) => {
            let refused = model_flags_given(&args);
            if !refused.is_empty() {
                bail!(
                    "--warm-start continues the saved model with its own settings; remove {} (only --epochs applies)",
                    refused.join(", ")
                );
            }
            Some(super::load_model(path)?)
        }
        None => None,
    };
    let params = match &warm {
        Some(model) => model.params_used().clone(),
        None => params_from(&args)?.check()?,
    };
    let table = read_table(&args.input)?;
    if table.num_rows() == 0 {
        bail!("empty input: {} has no rows", args.input.display());
    }
    let selection = match (&args.features.features, &args.features.features_column, &warm) {
        (Some(cols), _, _) => FeatureSelection::Columns(cols.clone()),
        (None, Some(col), _) => FeatureSelection::ListColumn(col.clone()),
        (None, None, Some(model)) => match model.extra().get(FEATURES_COLUMN_KEY).and_then(|v| v.as_str()) {
            Some(col) => FeatureSelection::ListColumn(col.to_string()),
            None => FeatureSelection::Columns(model.feature_names().to_vec()),
        },
        (None, None, None) => {
            let skipped: Vec<String> =
                non_feature_columns(&table).into_iter().filter(|c| !args.features.exclude.contains(c)).collect();
            if !skipped.is_empty() {
                tracing::warn!(
                    "neither numeric nor categorical, so not used as features: {} (name them with --features to see why)",
                    skipped.join(", ")
                );
            }
            FeatureSelection::AllNumericExcept(args.features.exclude.clone())
        }
    };
    // A warm start codes the categories in the saved model's vocabularies; a new model learns its own.
    let (x, names, kinds) = match (&warm, &selection) {
        (Some(model), FeatureSelection::Columns(columns)) if model.has_categories() => {
            let (x, _) = model_features(&table, columns, model.feature_kinds())?;
            (x, columns.clone(), model.feature_kinds().to_vec())
        }
        _ => {
            let features = training_features(&table, &selection, params.max_categories())?;
            (features.matrix, features.names, features.kinds)
        }
    };
    tracing::info!(rows = x.nrows(), features = x.ncols(), variant = params.variant().name(), "training");
    println!("features: {}", describe_features(&names, &kinds));

    let epochs = args.epochs.unwrap_or(params.epochs()) as u64;
    let bar = if progress { ProgressBar::new(epochs) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} epoch {pos}/{len} [{bar:30}] {elapsed} loss {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut on_epoch = |e: &autoenc::EpochRecord| {
        let val = e.validation_loss.map(|v| format!(" val {v:.5}")).unwrap_or_default();
        bar.set_message(format!("{:.5}{val}", e.loss));
        bar.inc(1);
        tracing::debug!(epoch = e.epoch, loss = e.loss, validation = e.validation_loss, "epoch done");
    };
    let model = match warm {
        Some(mut model) => {
            model.continue_training(x.view(), epochs as usize, &mut on_epoch)?;
            model
        }
        None => {
            let mut model = params.fit_with_kinds(x.view(), names, kinds, &mut on_epoch)?;
            if let Some(col) = &args.features.features_column {
                model.extra_mut().insert(FEATURES_COLUMN_KEY.into(), col.clone().into());
            }
            model
        }
    };
    bar.finish_and_clear();
    model.save(&args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let last = model.report().epochs.last();
    tracing::info!(
        model = %args.out.display(),
        network = %model.architecture().describe(),
        threshold = model.threshold().value,
        final_loss = last.map(|e| e.loss),
        "saved"
    );
    println!(
        "trained {} ({}) on {} rows; threshold {:.6}; saved to {}",
        model.params_used().variant().name(),
        model.architecture().describe(),
        x.nrows(),
        model.threshold().value,
        args.out.display()
    );
    Ok(())
}
