//! Withholds the result of a cluster query whose job had to re-run a stage.
//!
//! When an executor is lost, Ballista 55 rolls back the stages whose shuffle output lived there and
//! runs them again. That recovery is not reliable: it can leave the job waiting for ever, and it has
//! been seen to read the lost executor's share of a shuffle twice, which gives a complete-looking but
//! wrong answer (docs/cluster.md, "Failures"). A wrong answer is worse than none, so every query
//! planned by [`cluster_context`](crate::cluster_context) runs under this guard:
//!
//! - while the job runs, the guard asks the scheduler's REST API (`GET /api/job/{id}`) every
//!   [`POLL_INTERVAL`] whether any stage is on its second attempt; if so the query fails at once;
//! - when the job has finished, before the first batch is handed on, it asks once more, so a rollback
//!   that happened between two polls is caught too.
//!
//! A job found re-running is left to end by itself and cancelled (`PATCH /api/job/{id}`) only if it is
//! still running [`ABANDON_AFTER`] later. Cancelling at once would be tidier but costs more: Ballista 55
//! forgets the tasks of a rolled-back stage that are still running elsewhere, and when a job is
//! cancelled before they report, their executor's slots are never given back, so the next query on
//! that executor waits for ever. Left alone, the re-run reaches its end (its result unread) or, when
//! Ballista's recovery itself hangs, is cancelled with nothing of it running.
//!
//! A stage's attempt number is the one thing that Ballista bumps on every rollback (a running stage
//! sent back to unresolved, a finished one sent back to running), and only then: a task retried on its
//! own, which Ballista does safely, leaves it alone. The scheduler publishes it only inside the
//! rendered stage graph (`stage_id=<stage>.<attempt>` in `stage_plan`), which is what is parsed here.
//!
//! The guard needs the scheduler's REST API, which `autoenc-ballista scheduler` always serves on its
//! gRPC port; a query fails with a message saying so when the API cannot be read.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ballista_api_types::dto::JobResponse;
use ballista_core::execution_plans::DistributedQueryExec;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_proto::protobuf::LogicalPlanNode;
use futures::{StreamExt, TryStreamExt};

/// How often a running job's stage attempts are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a job whose result was withheld may go on running before it is cancelled.
pub const ABANDON_AFTER: Duration = Duration::from_secs(60);

/// The scheduler's REST API, served on the same port as its gRPC service.
#[derive(Clone, Debug)]
pub struct SchedulerApi {
    http: reqwest::Client,
    base: String,
}

impl SchedulerApi {
    /// The API of the scheduler behind a `df://host:port` (or `http://host:port`) URL.
    pub fn new(url: &str) -> Result<SchedulerApi> {
        let Some(address) = url.strip_prefix("df://").or_else(|| url.strip_prefix("http://")) else {
            return exec_err!("{url}: a scheduler URL looks like df://host:50050");
        };
        let address = address.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(SchedulerApi { http, base: format!("http://{address}") })
    }

    /// The job as the scheduler renders it, with its stage graph.
    async fn job(&self, job_id: &str) -> Result<JobResponse> {
        let url = format!("{}/api/job/{job_id}", self.base);
        let unreadable = |reason: String| {
            DataFusionError::Execution(format!(
                "cannot check job {job_id} for re-run stages: {url}: {reason} (autoenc needs the scheduler's REST \
                 API, which `autoenc-ballista scheduler` serves); the result is withheld"
            ))
        };
        let response = self.http.get(&url).send().await.map_err(|e| unreadable(e.to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| unreadable(e.to_string()))?;
        if !status.is_success() {
            return Err(unreadable(format!("HTTP {status}")));
        }
        serde_json::from_str(&body).map_err(|e| unreadable(format!("unexpected answer: {e}")))
    }

    /// Waits, in the background, for a job whose result is withheld to end, and cancels it if it is
    /// still running after [`ABANDON_AFTER`] (why not at once: the module docs). Best effort: the
    /// query has failed already.
    fn abandon(&self, job_id: String) {
        let api = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + ABANDON_AFTER;
            while tokio::time::Instant::now() < deadline {
                match api.job(&job_id).await {
                    Ok(job) if job.status != "Running" && job.status != "Queued" => return,
                    _ => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
            let url = format!("{}/api/job/{job_id}", api.base);
            if let Err(error) = api.http.patch(&url).send().await {
                tracing::warn!("could not cancel job {job_id}: {error}");
            }
        });
    }

    /// `Err` naming the re-run stages when any stage of the job is past its first attempt.
    async fn check_no_rerun(&self, job_id: &str) -> Result<()> {
        let job = self.job(job_id).await?;
        let graph = job.stage_plan.unwrap_or_default();
        let rerun: Vec<String> = stage_attempts(&graph)
            .into_iter()
            .filter(|&(_, attempt)| attempt > 0)
            .map(|(stage, attempt)| format!("stage {stage} attempt {}", attempt + 1))
            .collect();
        if rerun.is_empty() {
            return Ok(());
        }
        exec_err!(
            "job {job_id} lost work on an executor and is re-running it ({}); Ballista 55 does not re-run lost \
             shuffle output reliably, so no result is given: run the query again",
            rerun.join(", ")
        )
    }
}

/// `(stage, attempt)` for every stage in a rendered Ballista stage graph, attempts counted from 0.
/// Each stage is headed `=========<State>Stage[stage_id=<stage>.<attempt>, ...]=========`.
pub fn stage_attempts(stage_graph: &str) -> Vec<(u32, u32)> {
    stage_graph
        .split("Stage[stage_id=")
        .skip(1)
        .filter_map(|rest| {
            let id = rest.split([',', ']']).next()?;
            let (stage, attempt) = id.split_once('.')?;
            Some((stage.parse().ok()?, attempt.parse().ok()?))
        })
        .collect()
}

/// Ballista's query planner with every distributed query wrapped in a [`GuardedQueryExec`].
#[derive(Debug)]
pub struct GuardedPlanner {
    inner: Arc<dyn QueryPlanner + Send + Sync>,
    api: SchedulerApi,
}

impl GuardedPlanner {
    pub fn new(inner: Arc<dyn QueryPlanner + Send + Sync>, api: SchedulerApi) -> GuardedPlanner {
        GuardedPlanner { inner, api }
    }
}

#[async_trait::async_trait]
impl QueryPlanner for GuardedPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.create_physical_plan(logical_plan, session_state).await?;
        if plan.is::<DistributedQueryExec<LogicalPlanNode>>() {
            return Ok(Arc::new(GuardedQueryExec { inner: plan, api: self.api.clone() }));
        }
        // Plans that run here (information_schema, empty relations) involve no executor; EXPLAIN ANALYZE
        // reports metrics, not rows.
        Ok(plan)
    }
}

/// A [`DistributedQueryExec`] whose job is watched for re-run stages (see the module docs).
#[derive(Debug)]
pub struct GuardedQueryExec {
    inner: Arc<dyn ExecutionPlan>,
    api: SchedulerApi,
}

impl GuardedQueryExec {
    fn job_id(&self) -> Option<String> {
        let distributed = self.inner.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?;
        distributed.job_id().map(|id| id.to_string())
    }
}

impl DisplayAs for GuardedQueryExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "AutoencJobGuard")
    }
}

impl ExecutionPlan for GuardedQueryExec {
    fn name(&self) -> &str {
        "AutoencJobGuard"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.inner]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(inner), true) => Ok(Arc::new(GuardedQueryExec { inner, api: self.api.clone() })),
            _ => exec_err!("AutoencJobGuard takes exactly one child"),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let mut rows = self.inner.execute(partition, context)?;
        let api = self.api.clone();
        let guard = GuardedQueryExec { inner: self.inner.clone(), api: self.api.clone() };
        let schema = self.inner.schema();
        // The inner stream yields nothing until the job has finished (it polls the job's status, then
        // fetches the result partitions), so the job is watched until the first item arrives.
        let checked = async move {
            let first = loop {
                tokio::select! {
                    first = rows.next() => break first,
                    () = tokio::time::sleep(POLL_INTERVAL) => {
                        let Some(job_id) = guard.job_id() else { continue };
                        if let Err(error) = api.check_no_rerun(&job_id).await {
                            api.abandon(job_id);
                            return Err(error);
                        }
                    }
                }
            };
            if let (Some(Ok(_)) | None, Some(job_id)) = (&first, guard.job_id()) {
                api.check_no_rerun(&job_id).await?;
            }
            Ok(futures::stream::iter(first).chain(rows))
        };
        let stream = futures::stream::once(checked).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage headers as Ballista 55's `Debug` for each stage state renders them
    /// (ballista-scheduler `state/execution_stage.rs`).
    const GRAPH: &str = "ExecutionGraph[job_id=aBc, session_id=s, available_tasks=0, is_successful=true]\n\
        =========SuccessfulStage[stage_id=1.0, partitions=4]=========\nShuffleWriterExec: ...\n\
        =========RunningStage[stage_id=2.1, partitions=2, successful_tasks=1, scheduled_tasks=1, available_tasks=0]=========\n\
        =========UnResolvedStage[stage_id=3.2, children=1]=========\nInputs{}\n\
        =========ResolvedStage[stage_id=4.0, partitions=2]=========\n\
        =========FailedStage[stage_id=5.3, partitions=2, successful_tasks=0, scheduled_tasks=0, available_tasks=0, error_message=x]=========\n";

    #[test]
    fn stage_attempts_reads_every_stage_state() {
        assert_eq!(stage_attempts(GRAPH), vec![(1, 0), (2, 1), (3, 2), (4, 0), (5, 3)]);
    }

    #[test]
    fn stage_attempts_of_text_without_stages_is_empty() {
        assert!(stage_attempts("ExecutionGraph[job_id=x]").is_empty());
        assert!(stage_attempts("Stage[stage_id=garbage]").is_empty());
    }

    /// A one-request HTTP server answering `status` and `body`; returns its `df://` URL.
    fn scheduler_answering(status: &str, body: String) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("df://{}", listener.local_addr().expect("address"));
        let status = status.to_string();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).expect("write");
        });
        url
    }

    fn job_json(stage_plan: &str) -> String {
        serde_json::json!({
            "job_id": "aBc", "job_name": "", "job_status": "Completed", "status": "Completed", "num_stages": 2,
            "completed_stages": 2, "percent_complete": 100, "start_time": 1, "end_time": 2, "stage_plan": stage_plan,
        })
        .to_string()
    }

    #[tokio::test]
    async fn a_job_on_first_attempts_passes() {
        let graph = "=========SuccessfulStage[stage_id=1.0, partitions=4]=========\n\
                     =========SuccessfulStage[stage_id=2.0, partitions=2]=========\n";
        let api = SchedulerApi::new(&scheduler_answering("200 OK", job_json(graph))).unwrap();
        api.check_no_rerun("aBc").await.expect("no stage re-ran");
    }

    #[tokio::test]
    async fn a_job_with_a_re_run_stage_is_an_error_naming_it() {
        let api = SchedulerApi::new(&scheduler_answering("200 OK", job_json(GRAPH))).unwrap();
        let error = api.check_no_rerun("aBc").await.unwrap_err().to_string();
        assert!(error.contains("job aBc lost work on an executor"), "{error}");
        assert!(error.contains("stage 2 attempt 2, stage 3 attempt 3, stage 5 attempt 4"), "{error}");
        assert!(error.contains("run the query again"), "{error}");
    }

    #[tokio::test]
    async fn a_scheduler_without_the_rest_api_withholds_the_result() {
        let api = SchedulerApi::new(&scheduler_answering("404 Not Found", String::new())).unwrap();
        let error = api.check_no_rerun("aBc").await.unwrap_err().to_string();
        assert!(error.contains("cannot check job aBc") && error.contains("HTTP 404"), "{error}");
        assert!(error.contains("the result is withheld"), "{error}");
        let api = SchedulerApi::new(&scheduler_answering("200 OK", "<html>".to_string())).unwrap();
        let error = api.check_no_rerun("aBc").await.unwrap_err().to_string();
        assert!(error.contains("unexpected answer"), "{error}");
    }

    #[test]
    fn scheduler_urls_must_name_host_and_port_by_scheme() {
        assert_eq!(SchedulerApi::new("df://127.0.0.1:50050").unwrap().base, "http://127.0.0.1:50050");
        assert_eq!(SchedulerApi::new("http://h:1/").unwrap().base, "http://h:1");
        let error = SchedulerApi::new("127.0.0.1:50050").unwrap_err();
        assert!(error.to_string().contains("df://host:50050"), "{error}");
    }
}
