//! One DataFusion session with the autoenc functions, files queryable by path, and the statement runner
//! the three modes share: split a text into statements, plan and run each in order, print its result.
//!
//! The session is local, or on a Ballista cluster (`--cluster`). On a cluster, queries run on the
//! executors, but `COPY ... TO` writes where the shell runs, as it does locally: the query under the
//! COPY runs on the cluster, its result comes back to the client, and a local session writes the file.
//! (Left to Ballista, the executors would each write their part to their own file systems.)

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::datasource::MemTable;
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::dml::CopyTo;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::DFParser;

/// How results are printed on standard output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Boxed table, like `psql`.
    Table,
    /// CSV with a header row, for pipes.
    Csv,
}

pub struct Session {
    ctx: SessionContext,
    /// On a cluster: the local session that writes `COPY ... TO` files.
    copy_here: Option<SessionContext>,
    format: OutputFormat,
}

impl Session {
    pub fn new(models: Option<&Path>, default_model: Option<&str>, format: OutputFormat) -> Result<Self> {
        let registry = Self::registry(models, default_model)?;
        let config = SessionConfig::new().with_information_schema(true);
        // `enable_url_table` makes `FROM 'file.parquet'` (and .csv, .json, .arrow) a table.
        let ctx = SessionContext::new_with_config(config).enable_url_table();
        register(&ctx, registry);
        Ok(Session { ctx, copy_here: None, format })
    }

    /// A session whose queries run on the Ballista cluster at `url` (`df://host:50050`).
    pub async fn cluster(
        url: &str,
        models: Option<&Path>,
        default_model: Option<&str>,
        format: OutputFormat,
    ) -> Result<Self> {
        let registry = Self::registry(models, default_model)?;
        let ctx = autoenc_ballista::cluster_context(url, registry).await?;
        Ok(Session { ctx, copy_here: Some(SessionContext::new()), format })
    }

    fn registry(models: Option<&Path>, default_model: Option<&str>) -> Result<Arc<ModelRegistry>> {
        let registry = match models {
            Some(directory) => {
                if !directory.is_dir() {
                    return Err(DataFusionError::Configuration(format!(
                        "--models {}: not a directory",
                        directory.display()
                    )));
                }
                ModelRegistry::with_directory(directory)
            }
            None => ModelRegistry::new(),
        };
        let registry = Arc::new(registry);
        if let Some(name) = default_model {
            // Fail now rather than at the first query that relies on it.
            registry.get(name).map_err(|e| DataFusionError::Configuration(format!("--default-model: {e}")))?;
            registry.set_default(name);
        }
        Ok(registry)
    }

    /// Runs every statement of `text` in order, printing results; stops at the first error.
    pub async fn run_script(&self, text: &str) -> Result<()> {
        let statements = DFParser::parse_sql(text)?;
        for statement in statements {
            let plan = self.ctx.state().statement_to_plan(statement).await?;
            let frame = match (plan, &self.copy_here) {
                (LogicalPlan::Copy(copy), Some(here)) => self.copy_here(copy, here).await?,
                (plan, _) => self.ctx.execute_logical_plan(plan).await?,
            };
            let schema = frame.schema().as_arrow().clone();
            let batches = frame.collect().await?;
            if !schema.fields().is_empty() {
                self.print(&schema, &batches)?;
            }
        }
        Ok(())
    }

    /// Runs the query of a `COPY` on the cluster and writes its result with the local session `here`.
    /// The result passes through the client's memory, as any query result printed by the shell does.
    async fn copy_here(&self, copy: CopyTo, here: &SessionContext) -> Result<datafusion::dataframe::DataFrame> {
        let result = self.ctx.execute_logical_plan(copy.input.as_ref().clone()).await?;
        let schema = Arc::new(result.schema().as_arrow().clone());
        let batches = result.collect().await?;
        let table = MemTable::try_new(schema, vec![batches])?;
        let input = LogicalPlanBuilder::scan("cluster_result", provider_as_source(Arc::new(table)), None)?.build()?;
        let local = CopyTo::new(Arc::new(input), copy.output_url, copy.partition_by, copy.file_type, copy.options);
        here.execute_logical_plan(LogicalPlan::Copy(local)).await
    }

    /// [`Session::run_script`], cancelled by Ctrl-C (SIGINT): returns `Ok(false)` when cancelled. The
    /// statements run in their own task so that the signal is seen even while a query holds a worker
    /// thread; aborting the task drops the query's streams, which stops DataFusion's work at its next
    /// yield. The prompt uses this; `-c` and `-f` runs keep the default, where Ctrl-C ends the process.
    pub async fn run_script_interruptible(&self, text: &str) -> Result<bool> {
        let session = Session { ctx: self.ctx.clone(), copy_here: self.copy_here.clone(), format: self.format };
        let text = text.to_owned();
        let mut task = tokio::spawn(async move { session.run_script(&text).await });
        tokio::select! {
            finished = &mut task => match finished {
                Ok(result) => result.map(|()| true),
                Err(e) => Err(DataFusionError::External(Box::new(e))),
            },
            // If the handler cannot be installed, this branch is disabled and the query just runs.
            Ok(()) = tokio::signal::ctrl_c() => {
                task.abort();
                Ok(false)
            }
        }
    }

    fn print(&self, schema: &arrow::datatypes::Schema, batches: &[RecordBatch]) -> Result<()> {
        match self.format {
            OutputFormat::Table => {
                let table = arrow::util::pretty::pretty_format_batches_with_schema(Arc::new(schema.clone()), batches)?;
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                // Not println!: it panics when the reader of a pipe goes away (`autoenc-sql ... | head`).
                let mut out = std::io::stdout().lock();
                writeln!(out, "{table}\n({rows} row{})", if rows == 1 { "" } else { "s" })?;
            }
            OutputFormat::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(std::io::stdout());
                if batches.is_empty() {
                    writer.write(&RecordBatch::new_empty(Arc::new(schema.clone())))?;
                }
                for batch in batches {
                    writer.write(batch)?;
                }
            }
        }
        Ok(())
    }
}
