//! A Ballista cluster of separate processes for the tests: one `autoenc-ballista scheduler` and N
//! `autoenc-ballista executor`s on 127.0.0.1, free ports, a scheduler event log to read where tasks
//! ran, and a guard that kills every process when the test ends, passing or not.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_autoenc-ballista");

/// A port nobody listens on now. Another process could take it before ours binds it; the readiness
/// wait then fails the test with the process's log rather than hanging.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local address").port()
}

pub struct Cluster {
    pub scheduler_port: u16,
    scheduler: Child,
    executors: Vec<Option<Child>>,
    pub executor_ids: Vec<String>,
    logs: tempfile::TempDir,
}

impl Cluster {
    /// Starts a scheduler and `executors` executors of one task slot each, reading models from
    /// `models`, and waits until the scheduler lists every executor. One slot each makes a query's
    /// tasks spread over the executors.
    pub fn start(executors: usize, models: &Path) -> Cluster {
        Cluster::start_with(executors, 1, models)
    }

    /// [`Cluster::start`] with `vcores` task slots per executor.
    pub fn start_with(executors: usize, vcores: usize, models: &Path) -> Cluster {
        Cluster::start_with_policy(executors, vcores, models, None)
    }

    /// [`Cluster::start_with`] with Ballista's task scheduling `policy` (`push-staged`,
    /// `pull-staged`) on every node instead of `autoenc-ballista`'s default.
    pub fn start_with_policy(executors: usize, vcores: usize, models: &Path, policy: Option<&str>) -> Cluster {
        let logs = tempfile::tempdir().expect("log directory");
        let scheduler_port = free_port();
        let events = logs.path().join("events");
        std::fs::create_dir_all(&events).expect("event log directory");
        let port = scheduler_port.to_string();
        let mut scheduler_args = vec![
            "scheduler",
            "--models",
            path_str(models),
            "--bind-host",
            "127.0.0.1",
            "--external-host",
            "127.0.0.1",
            "--bind-port",
            &port,
            "--event-log-dir",
            path_str(&events),
            // Declare a killed executor dead after a few seconds, not Ballista's default minutes,
            // so that the failure test sees the scheduler's reaction within its time budget.
            "--executor-timeout-seconds",
            "4",
            "--expire-dead-executor-interval-seconds",
            "1",
        ];
        if let Some(policy) = policy {
            scheduler_args.extend(["--scheduler-policy", policy]);
        }
        let scheduler = spawn(&logs.path().join("scheduler.log"), &scheduler_args);
        let mut cluster = Cluster { scheduler_port, scheduler, executors: Vec::new(), executor_ids: Vec::new(), logs };
        wait_for(&cluster, "the scheduler to listen", || TcpStream::connect(("127.0.0.1", scheduler_port)).is_ok());
        for i in 0..executors {
            let id = format!("executor-{i}");
            let work_dir = cluster.logs.path().join(&id);
            std::fs::create_dir_all(&work_dir).expect("executor work directory");
            let ports = [free_port(), free_port(), free_port()].map(|p| p.to_string());
            let slots = vcores.to_string();
            let mut executor_args = vec![
                "executor",
                "--models",
                path_str(models),
                "--id",
                &id,
                "--bind-host",
                "127.0.0.1",
                "--external-host",
                "127.0.0.1",
                "--scheduler-host",
                "127.0.0.1",
                "--scheduler-port",
                &port,
                "--bind-port",
                &ports[0],
                "--bind-grpc-port",
                &ports[1],
                "--bind-health-port",
                &ports[2],
                "--work-dir",
                path_str(&work_dir),
                "--vcores",
                &slots,
                "--executor-heartbeat-interval-seconds",
                "1",
            ];
            if let Some(policy) = policy {
                executor_args.extend(["--task-scheduling-policy", policy]);
            }
            let child = spawn(&cluster.logs.path().join(format!("{id}.log")), &executor_args);
            cluster.executors.push(Some(child));
            cluster.executor_ids.push(id);
        }
        wait_for(&cluster, "every executor to register", || {
            let listed = cluster.registered_executors();
            cluster.executor_ids.iter().all(|id| listed.contains(id))
        });
        cluster
    }

    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }

    /// Executor ids the scheduler's REST API lists.
    pub fn registered_executors(&self) -> BTreeSet<String> {
        let Some(body) = http_get(self.scheduler_port, "/api/executors") else { return BTreeSet::new() };
        let Ok(serde_json::Value::Array(executors)) = serde_json::from_str::<serde_json::Value>(&body) else {
            return BTreeSet::new();
        };
        executors.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect()
    }

    /// Kills executor `i` (SIGKILL: no goodbye to the scheduler).
    pub fn kill_executor(&mut self, i: usize) {
        if let Some(mut child) = self.executors[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log of executor `i` so far.
    pub fn executor_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.logs.path().join(format!("executor-{i}.log"))).unwrap_or_default()
    }

    /// Every process's log, for a failing assertion's message.
    pub fn all_logs(&self) -> String {
        let mut text = String::new();
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.logs.path())
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
            .unwrap_or_default();
        names.sort();
        for path in names {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            // The tail is what explains a failure; whole logs drown the assertion.
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            text.push_str(&format!("--- {} (last lines)\n", path.display()));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// For each finished job in the scheduler's event log: the executors that ran its successful
    /// tasks, from the `TaskEnd` records Ballista writes there. Waits for the scheduler to close the
    /// logs of `jobs` jobs (it renames `<job>.eventlog.running` to `<job>.eventlog` when a job ends).
    pub fn executors_per_job(&self, jobs: usize) -> Vec<(String, BTreeSet<String>)> {
        let events = self.logs.path().join("events");
        let finished = || -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&events)
                .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            files.retain(|p| p.extension().is_some_and(|e| e == "eventlog"));
            files.sort();
            files
        };
        wait_for(self, "the scheduler to close the jobs' event logs", || finished().len() >= jobs);
        finished()
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("read an event log");
                let executors = text
                    .lines()
                    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                    .filter(|record| record["ev"] == "TaskEnd")
                    .filter(|record| {
                        record["data"]["status"] == "Successful" || record["data"]["status"].get("Successful").is_some()
                    })
                    .filter_map(|record| record["data"]["executor_id"].as_str().map(str::to_string))
                    .collect();
                (path.file_stem().unwrap_or_default().to_string_lossy().into_owned(), executors)
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn spawn(log: &Path, args: &[&str]) -> Child {
    let out = std::fs::File::create(log).expect("create a process log");
    let err = out.try_clone().expect("clone the log handle");
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start autoenc-ballista")
}

/// Polls `ready` for up to 30 s; panics with every process's log otherwise.
fn wait_for(cluster: &Cluster, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", cluster.all_logs());
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (the REST API shares the scheduler's port): the body of a 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
}
