//! The deployment files parse and agree with each other: `docker/pipeline.toml` is a valid
//! `autoenc stream` configuration, and `docker-compose.yml` runs a KRaft Kafka (no ZooKeeper), creates
//! the pipeline's topics, trains the model the pipeline loads, runs `autoenc stream` on that file and a
//! demo producer on its input topic; Prometheus scrapes the pipeline's metrics endpoint and Grafana shows
//! the provisioned dashboard on that Prometheus. No Docker is needed: the files are only parsed. (That
//! every metric the dashboard queries is one a running pipeline serves is checked live in
//! `tests/stream_mock.rs`.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use autoenc::stream::{Delivery, InputFormat, OutputFormat, StreamConfig};
use serde_norway::{Mapping, Value};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn pipeline() -> StreamConfig {
    StreamConfig::from_file(&repo_file("docker/pipeline.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn compose() -> Value {
    let path = repo_file("docker-compose.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn services(compose: &Value) -> &Mapping {
    compose.get("services").and_then(Value::as_mapping).expect("docker-compose.yml has a `services` mapping")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    services(compose).get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
}

/// A scalar as text (compose accepts numbers and booleans where it means strings).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `command`/`entrypoint` (or any list of strings) as whitespace-separated tokens, whether it is
/// written as a sequence or as one string (a shell script in a sequence is split too).
fn tokens(value: Option<&Value>) -> Vec<String> {
    let items: Vec<String> = match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    };
    items.iter().flat_map(|item| item.split_whitespace()).map(str::to_string).collect()
}

/// True when `flag` is directly followed by `value` in the tokens.
fn has_flag(tokens: &[String], flag: &str, value: &str) -> bool {
    tokens.windows(2).any(|pair| pair[0] == flag && pair[1] == value)
}

/// A service's environment as (name, value) pairs, from either compose form (mapping or `NAME=value`).
fn environment(service: &Value) -> Vec<(String, String)> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => {
            map.iter().filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default()))).collect()
        }
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(scalar)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (item.clone(), String::new()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn env_var(service: &Value, name: &str) -> Option<String> {
    environment(service).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A service's short-syntax volumes as (source, target) pairs (`source:target[:mode]`).
fn volumes(service: &Value) -> Vec<(String, String)> {
    let Some(Value::Sequence(items)) = service.get("volumes") else { return Vec::new() };
    items
        .iter()
        .filter_map(scalar)
        .filter_map(|item| {
            let mut parts = item.splitn(3, ':');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// The names of the services a service waits for with the given `depends_on` condition.
fn depends_on(service: &Value, condition: &str) -> Vec<String> {
    match service.get("depends_on") {
        Some(Value::Mapping(map)) => map
            .iter()
            .filter(|(_, v)| v.get("condition").and_then(Value::as_str) == Some(condition))
            .filter_map(|(k, _)| scalar(k))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn pipeline_toml_is_a_valid_stream_config() {
    let config = pipeline();
    config.validate().unwrap_or_else(|e| panic!("docker/pipeline.toml: {e}"));
    assert_eq!(config.brokers, "kafka:9092");
    assert_eq!(config.input_topics, ["sensors"]);
    assert_eq!(config.output_topic, "sensors-scored");
    assert_eq!(config.alerts_topic.as_deref(), Some("sensors-alerts"));
    assert_eq!(config.dead_letter_topic.as_deref(), Some("sensors-dead-letters"));
    assert_eq!(config.model, Path::new("/models/sensors.ae"));
    assert_eq!(config.delivery, Delivery::AtLeastOnce);
    assert_eq!(config.input_format, InputFormat::Json);
    assert_eq!(config.output_format, OutputFormat::Json);
    assert!(!config.learn, "the compose file mounts the model volume read-only");
    let metrics: SocketAddr = config.metrics_addr.parse().expect("metrics_addr is an address");
    assert!(metrics.ip().is_unspecified(), "inside a container the metrics endpoint must listen on 0.0.0.0");
    assert_eq!(metrics.port(), 9464);
    // The librdkafka settings reach the clients.
    assert_eq!(config.producer_config().get("compression.type"), Some("lz4"));
    assert_eq!(config.consumer_config().get("bootstrap.servers"), Some("kafka:9092"));
}

#[test]
fn compose_runs_kraft_kafka_without_zookeeper() {
    let compose = compose();
    for (name, definition) in services(&compose) {
        let name = scalar(name).unwrap_or_default();
        let image = definition.get("image").and_then(Value::as_str).unwrap_or_default();
        assert!(
            !name.to_lowercase().contains("zookeeper") && !image.to_lowercase().contains("zookeeper"),
            "service `{name}` ({image}) is a ZooKeeper: the broker must run in KRaft mode"
        );
        for (key, _) in environment(definition) {
            assert!(!key.to_uppercase().contains("ZOOKEEPER"), "service `{name}` sets {key}");
        }
    }
    let kafka = service(&compose, "kafka");
    let roles = env_var(kafka, "KAFKA_PROCESS_ROLES").expect("kafka sets KAFKA_PROCESS_ROLES (KRaft)");
    let roles: Vec<&str> = roles.split(',').map(str::trim).collect();
    assert!(roles.contains(&"broker") && roles.contains(&"controller"), "combined broker + controller: {roles:?}");
    assert!(env_var(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS").is_some_and(|v| !v.is_empty()));
    assert!(env_var(kafka, "KAFKA_CONTROLLER_LISTENER_NAMES").is_some_and(|v| !v.is_empty()));
    assert!(env_var(kafka, "CLUSTER_ID").is_some_and(|v| !v.is_empty()));
    assert_eq!(env_var(kafka, "KAFKA_AUTO_CREATE_TOPICS_ENABLE").as_deref(), Some("false"));
    // The pipeline's bootstrap address is what the broker advertises inside the network, and the host
    // listener is published.
    let advertised = env_var(kafka, "KAFKA_ADVERTISED_LISTENERS").expect("kafka sets KAFKA_ADVERTISED_LISTENERS");
    let config = pipeline();
    assert!(
        advertised.contains(&format!("://{}", config.brokers)),
        "{advertised} does not advertise {}",
        config.brokers
    );
    assert!(advertised.contains("localhost:9094"), "{advertised}");
    assert!(tokens(kafka.get("ports")).iter().any(|p| p.trim_matches('"') == "9094:9094"));
}

#[test]
fn compose_creates_the_pipeline_topics() {
    let compose = compose();
    let init = service(&compose, "kafka-init");
    let script = tokens(init.get("command"));
    assert!(script.iter().any(|t| t.ends_with("kafka-topics.sh")), "kafka-init runs kafka-topics.sh");
    let config = pipeline();
    let topics = config
        .input_topics
        .iter()
        .chain([&config.output_topic])
        .chain(config.alerts_topic.iter())
        .chain(config.dead_letter_topic.iter());
    for topic in topics {
        assert!(has_flag(&script, "--topic", topic), "kafka-init does not create `{topic}`");
    }
    let depends = depends_on(init, "service_healthy");
    assert!(depends.contains(&"kafka".to_string()), "kafka-init waits for a healthy broker: {depends:?}");
    assert!(service(&compose, "kafka").get("healthcheck").is_some(), "kafka has a healthcheck");
}

#[test]
fn compose_trains_the_model_the_stream_service_loads() {
    let compose = compose();
    let config = pipeline();
    let model = config.model.to_str().expect("UTF-8 model path");
    let model_dir = config.model.parent().and_then(Path::to_str).expect("the model has a directory");

    let trainer = service(&compose, "trainer");
    let train = tokens(trainer.get("command"));
    assert_eq!(train.first().map(String::as_str), Some("train"), "trainer runs `autoenc train`: {train:?}");
    assert!(has_flag(&train, "--out", model), "trainer writes {model}: {train:?}");
    // The training file comes from the demo-data service through a shared volume.
    let data = train.get(1).expect("trainer names its training file");
    let data_dir = Path::new(data).parent().and_then(Path::to_str).expect("the training file has a directory");
    let data_volume = volumes(trainer).into_iter().find(|(_, target)| target == data_dir).map(|(source, _)| source);
    let data_volume = data_volume.unwrap_or_else(|| panic!("trainer mounts nothing at {data_dir}"));
    let writer = service(&compose, "demo-data");
    assert!(
        volumes(writer).contains(&(data_volume.clone(), data_dir.to_string())),
        "demo-data writes into {data_volume}"
    );
    assert!(has_flag(&tokens(writer.get("command")), "--out", data), "demo-data writes {data}");
    assert!(depends_on(trainer, "service_completed_successfully").contains(&"demo-data".to_string()));

    let stream = service(&compose, "stream");
    let models_volume = |service: &Value| {
        volumes(service).into_iter().find(|(_, target)| target == model_dir).map(|(source, _)| source)
    };
    let trainer_models = models_volume(trainer).expect("trainer mounts the model directory");
    assert_eq!(models_volume(stream), Some(trainer_models), "trainer and stream share the model volume at {model_dir}");
    let waits = depends_on(stream, "service_completed_successfully");
    for before in ["trainer", "kafka-init"] {
        assert!(waits.iter().any(|w| w == before), "stream starts after `{before}` completed: {waits:?}");
    }
}

#[test]
fn compose_stream_service_runs_the_pipeline_config() {
    let compose = compose();
    let stream = service(&compose, "stream");
    let command = tokens(stream.get("command"));
    assert_eq!(command.first().map(String::as_str), Some("stream"), "{command:?}");
    assert!(has_flag(&command, "--config", "/config/pipeline.toml"), "{command:?}");
    // The config file is the repository's docker/pipeline.toml, mounted at /config/pipeline.toml.
    let mounted = volumes(stream).into_iter().find(|(_, target)| target == "/config/pipeline.toml");
    let (source, _) = mounted.expect("stream mounts a file at /config/pipeline.toml");
    assert_eq!(repo_file(source.trim_start_matches("./")), repo_file("docker/pipeline.toml"));
    // Built from the repository's Dockerfile, and the metrics port is published.
    let build = stream.get("build").expect("stream is built from the repository");
    let context = build.get("context").and_then(Value::as_str).or_else(|| build.as_str());
    assert_eq!(context, Some("."));
    assert!(repo_file("Dockerfile").is_file());
    assert!(tokens(stream.get("ports")).iter().any(|p| p.trim_matches('"') == "9464:9464"));
}

#[test]
fn compose_demo_producer_feeds_the_input_topic() {
    let compose = compose();
    let producer = service(&compose, "demo-producer");
    let command = tokens(producer.get("command"));
    let config = pipeline();
    assert_eq!(command.first().map(String::as_str), Some("produce"), "{command:?}");
    assert!(has_flag(&command, "--bootstrap", &config.brokers), "{command:?}");
    assert!(has_flag(&command, "--topic", &config.input_topics[0]), "{command:?}");
    let context = producer.get("build").and_then(|b| b.get("context")).and_then(Value::as_str);
    let context = context.expect("demo-producer is built from docker/demo-producer");
    let dir = repo_file(context.trim_start_matches("./"));
    assert!(dir.join("Dockerfile").is_file() && dir.join("producer.py").is_file(), "{}", dir.display());
}

fn yaml_file(relative: &str) -> Value {
    let path = repo_file(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> serde_json::Value {
    let path = repo_file("docker/grafana/dashboards/autoenc.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The repository file a service mounts at `target` (short volume syntax, `./path:target`).
fn mounted_file(service: &Value, target: &str) -> Option<PathBuf> {
    volumes(service)
        .into_iter()
        .find(|(_, t)| t == target)
        .map(|(source, _)| repo_file(source.trim_start_matches("./")))
}

#[test]
fn compose_prometheus_scrapes_the_stream_metrics_endpoint() {
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    let command = tokens(prometheus.get("command"));
    let config_path = command
        .iter()
        .find_map(|t| t.strip_prefix("--config.file="))
        .expect("prometheus is started with --config.file");
    let mounted = mounted_file(prometheus, config_path).expect("the config file is mounted from the repository");
    assert_eq!(mounted, repo_file("docker/prometheus/prometheus.yml"));

    let config = yaml_file("docker/prometheus/prometheus.yml");
    let jobs = config.get("scrape_configs").and_then(Value::as_sequence).expect("scrape_configs");
    let port = pipeline().metrics_addr.parse::<SocketAddr>().expect("pipeline.toml serves metrics").port();
    let job = jobs
        .iter()
        .find(|job| {
            job.get("static_configs").and_then(Value::as_sequence).is_some_and(|configs| {
                configs.iter().any(|c| tokens(c.get("targets")).contains(&format!("stream:{port}")))
            })
        })
        .unwrap_or_else(|| panic!("no scrape job targets stream:{port}"));
    let path = job.get("metrics_path").and_then(Value::as_str).unwrap_or("/metrics");
    assert_eq!(path, "/metrics", "the path `autoenc stream` serves");
}

#[test]
fn compose_grafana_provisions_the_dashboard_on_that_prometheus() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let provisioning = mounted_file(grafana, "/etc/grafana/provisioning").expect("provisioning mounted");
    assert_eq!(provisioning, repo_file("docker/grafana/provisioning"));

    // The data source: compose's prometheus service, by the uid the dashboard uses.
    let sources = yaml_file("docker/grafana/provisioning/datasources/prometheus.yml");
    let source = &sources.get("datasources").and_then(Value::as_sequence).expect("datasources")[0];
    assert_eq!(source.get("type").and_then(Value::as_str), Some("prometheus"));
    assert_eq!(source.get("url").and_then(Value::as_str), Some("http://prometheus:9090"));
    assert!(tokens(service(&compose, "prometheus").get("ports")).iter().any(|p| p.trim_matches('"') == "9090:9090"));
    let uid = source.get("uid").and_then(Value::as_str).expect("the data source has a uid");

    // The dashboard provider reads the directory where compose mounts the repository's dashboards.
    let providers = yaml_file("docker/grafana/provisioning/dashboards/autoenc.yml");
    let provider = &providers.get("providers").and_then(Value::as_sequence).expect("providers")[0];
    let path = provider.get("options").and_then(|o| o.get("path")).and_then(Value::as_str).expect("provider path");
    assert_eq!(mounted_file(grafana, path), Some(repo_file("docker/grafana/dashboards")));

    // Every panel queries that data source, with a non-empty PromQL expression.
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 5);
    let mut exprs = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], uid, "panel {title}");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {title} has no targets"));
        assert!(!targets.is_empty(), "panel {title} has no queries");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], uid, "panel {title}");
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "panel {title} has an empty query");
            assert_eq!(expr.matches('(').count(), expr.matches(')').count(), "unbalanced query in {title}: {expr}");
            exprs.push(expr.to_string());
        }
    }
    // What the issue names: throughput, latency percentiles, anomaly rate, dead letters, consumer lag.
    let all = exprs.join("\n");
    for needed in [
        "rate(autoenc_messages_in_total",
        "histogram_quantile(0.99, sum by (le) (rate(autoenc_batch_latency_seconds_bucket",
        "autoenc_anomalies_total",
        "autoenc_dead_letters_total",
        "autoenc_consumer_lag",
    ] {
        assert!(all.contains(needed), "no panel queries {needed}");
    }
    // Grafana's home dashboard is the provisioned file.
    assert_eq!(
        env_var(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH").map(PathBuf::from),
        Some(Path::new(path).join("autoenc.json"))
    );
}

const CLUSTER_NODES: [&str; 3] = ["ballista-scheduler", "ballista-executor-1", "ballista-executor-2"];
const CLUSTER_EXECUTORS: [&str; 2] = ["ballista-executor-1", "ballista-executor-2"];

/// The value following `flag` in a command.
fn flag_value(tokens: &[String], flag: &str) -> Option<String> {
    tokens.windows(2).find(|pair| pair[0] == flag).map(|pair| pair[1].clone())
}

#[test]
fn compose_cluster_runs_autoenc_ballista_built_from_the_dockerfile_cluster_stage() {
    let compose = compose();
    let dockerfile = std::fs::read_to_string(repo_file("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let stage = lines
        .iter()
        .position(|line| line.starts_with("FROM ") && line.ends_with(" AS cluster"))
        .expect("the Dockerfile has a `cluster` stage");
    let next_stage =
        lines[stage + 1..].iter().position(|line| line.starts_with("FROM ")).map_or(lines.len(), |i| stage + 1 + i);
    let cluster_stage = &lines[stage..next_stage];
    assert!(cluster_stage.contains(&r#"ENTRYPOINT ["autoenc-ballista"]"#), "the cluster image runs autoenc-ballista");
    assert!(
        cluster_stage.iter().any(|line| line.contains("/usr/local/bin/") && line.contains("autoenc-sql")),
        "and ships autoenc-sql"
    );
    // A plain `docker build .` still makes the `autoenc` image the stream services use.
    let last = lines.iter().rev().find(|line| line.starts_with("FROM ")).expect("a stage");
    assert!(last.ends_with(" AS runtime"), "the last stage is the autoenc runtime image: {last}");

    for name in CLUSTER_NODES.iter().chain(["sql"].iter()) {
        let node = service(&compose, name);
        assert_eq!(node["build"]["target"].as_str(), Some("cluster"), "{name} builds the cluster target");
        assert_eq!(node["build"]["context"].as_str(), Some("."), "{name} builds this repository");
    }
    assert_eq!(
        tokens(service(&compose, "ballista-scheduler").get("command")).first().map(String::as_str),
        Some("scheduler")
    );
    for name in CLUSTER_EXECUTORS {
        assert_eq!(
            tokens(service(&compose, name).get("command")).first().map(String::as_str),
            Some("executor"),
            "{name}"
        );
    }
}

#[test]
fn compose_executors_and_the_shell_reach_the_scheduler() {
    let compose = compose();
    let scheduler = service(&compose, "ballista-scheduler");
    let scheduler_command = tokens(scheduler.get("command"));
    let port = flag_value(&scheduler_command, "--bind-port").expect("the scheduler names its port");
    assert_eq!(port, "50050", "Ballista's usual scheduler port");
    assert!(has_flag(&scheduler_command, "--bind-host", "0.0.0.0"), "the scheduler listens beyond its container");
    let published = tokens(scheduler.get("ports"));
    assert!(published.contains(&format!("{port}:{port}")), "the scheduler's port is published: {published:?}");

    let mut external_hosts = Vec::new();
    for name in CLUSTER_EXECUTORS {
        let command = tokens(service(&compose, name).get("command"));
        assert!(
            has_flag(&command, "--scheduler-host", "ballista-scheduler"),
            "{name} connects to the scheduler service"
        );
        assert!(has_flag(&command, "--scheduler-port", &port), "{name} connects to the scheduler's port");
        assert!(has_flag(&command, "--bind-host", "0.0.0.0"), "{name} listens beyond its container");
        // Results and shuffle data are fetched from the executor at the host it advertises: its own name.
        assert!(has_flag(&command, "--external-host", name), "{name} advertises its service name");
        assert_eq!(depends_on(service(&compose, name), "service_started"), ["ballista-scheduler"], "{name}");
        external_hosts.push(flag_value(&command, "--external-host"));
    }
    external_hosts.dedup();
    assert_eq!(external_hosts.len(), CLUSTER_EXECUTORS.len(), "two distinct executors");

    let shell = tokens(service(&compose, "sql").get("entrypoint"));
    assert_eq!(shell.first().map(String::as_str), Some("autoenc-sql"));
    assert!(
        has_flag(&shell, "--cluster", &format!("df://ballista-scheduler:{port}")),
        "the shell queries the cluster: {shell:?}"
    );
}

#[test]
fn compose_every_cluster_node_reads_the_trained_models_and_the_same_data() {
    let compose = compose();
    // The models volume is the one the trainer writes.
    let trainer_out = flag_value(&tokens(service(&compose, "trainer").get("command")), "--out").expect("trainer --out");
    let trainer_models = volumes(service(&compose, "trainer"));
    let (models_volume, models_dir) = trainer_models
        .iter()
        .find(|(_, target)| trainer_out.starts_with(&format!("{target}/")))
        .expect("the trainer writes its model into a volume")
        .clone();

    let mut data_mounts = Vec::new();
    for name in CLUSTER_NODES.iter().chain(["sql"].iter()) {
        let node = service(&compose, name);
        let command = tokens(node.get("command").or(node.get("entrypoint")));
        let models = flag_value(&command, "--models").unwrap_or_else(|| panic!("{name} has --models"));
        let mounts = volumes(node);
        assert!(
            mounts.contains(&(models_volume.clone(), models.clone())),
            "{name} reads the trainer's `{models_volume}` volume at its --models {models}: {mounts:?}"
        );
        assert_eq!(models, models_dir, "{name}: model names resolve to the same files on every node");
        data_mounts.push(
            mounts
                .into_iter()
                .find(|(source, _)| source == "cluster-data")
                .unwrap_or_else(|| panic!("{name} mounts cluster-data")),
        );
    }
    data_mounts.dedup();
    assert_eq!(
        data_mounts.len(),
        1,
        "one data volume at one path on every node, so file paths mean the same: {data_mounts:?}"
    );
    let declared = compose.get("volumes").and_then(Value::as_mapping).expect("top-level volumes");
    assert!(
        declared.contains_key("cluster-data") && declared.contains_key(models_volume.as_str()),
        "the volumes are declared"
    );
}
