//! The packaging files: the systemd unit passes `systemd-analyze verify` with no warning; the
//! Dockerfile builds in one stage and runs as a non-root user; the compose file mounts files the
//! repository has. (No Docker engine runs here, so the image and compose are not started.)

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let unit = std::fs::read_to_string(repo("packaging/breakerd.service")).unwrap();
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "reload is SIGHUP"
    );
    assert!(
        unit.contains("LimitNOFILE=65536") && unit.contains("SystemCallErrorNumber=EPERM"),
        "room for descriptors, and a filtered call fails instead of killing"
    );
    assert!(
        unit.contains("NoNewPrivileges=yes")
            && unit.contains("ProtectSystem=strict")
            && unit.contains("DynamicUser=yes")
    );
    // Verify against the binary just built instead of the install path.
    let local = unit.replace("/usr/local/bin/breakerd", env!("CARGO_BIN_EXE_breakerd"));
    let path = crate::support::scratch_dir("systemd").join("breakerd.service");
    std::fs::write(&path, local).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze: install Debian's systemd (see .ci/debian-packages)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("breakerd.service"))
        .collect();
    assert!(
        output.status.success() && about_unit.is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_unprivileged() {
    let dockerfile = std::fs::read_to_string(repo("packaging/Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(
        dockerfile
            .contains("COPY --from=build /src/target/release/breakerd /usr/local/bin/breakerd")
    );
    let user = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "root");
    for copied in dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
    {
        for source in copied.split_whitespace().rev().skip(1) {
            assert!(
                repo(source).exists(),
                "the Dockerfile copies {source}, which the repository lacks"
            );
        }
    }
}

#[test]
fn the_compose_file_mounts_files_the_repository_has() {
    let compose = std::fs::read_to_string(repo("packaging/docker-compose.yml")).unwrap();
    for service in ["breakerd:", "prometheus:", "alertmanager:", "grafana:"] {
        assert!(
            compose.contains(&format!("\n  {service}")),
            "no {service} service"
        );
    }
    let mounts: Vec<&str> = compose
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter(|item| item.starts_with("../") || item.starts_with("./"))
        .collect();
    assert!(mounts.len() >= 7, "{mounts:?}");
    for mount in mounts {
        let source = mount.split(':').next().unwrap();
        assert!(
            repo("packaging").join(source).exists(),
            "compose mounts {source}, which does not exist"
        );
    }
}

/// The unit's commands, run as systemd would run them (there is no systemd to start it here):
/// `ExecStartPre` accepts the bundled config, and `ExecStart` with the unit's `Environment=`
/// serves `/-/ready`, which `breakerd health` confirms.
#[test]
fn the_systemd_units_commands_start_a_daemon_that_is_ready() {
    let unit = std::fs::read_to_string(repo("packaging/breakerd.service")).unwrap();
    let bin = env!("CARGO_BIN_EXE_breakerd");
    let config = repo("alerts.toml");
    let command = |key: &str| -> Vec<String> {
        let line = unit
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} line"));
        line.replace("/usr/local/bin/breakerd", bin)
            .replace("/etc/breakerd/alerts.toml", &config.display().to_string())
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let environment: Vec<(String, String)> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("Environment="))
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    assert!(environment.iter().any(|(key, _)| key == "MALLOC_ARENA_MAX"));

    let pre = command("ExecStartPre=");
    let checked = Command::new(&pre[0]).args(&pre[1..]).output().unwrap();
    assert!(checked.status.success(), "ExecStartPre failed: {checked:?}");

    let port = crate::support::closed_port();
    let start = command("ExecStart=");
    let mut daemon = Command::new(&start[0])
        .args(&start[1..])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .envs(environment)
        .current_dir(crate::support::scratch_dir("unit"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until_listening(port, "breakerd from the unit's ExecStart");
    let health = Command::new(bin)
        .args([
            "health",
            "--url",
            &format!("http://127.0.0.1:{port}/-/ready"),
        ])
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(health.status.success(), "{health:?}");
    assert!(String::from_utf8_lossy(&health.stdout).contains("breakerd is Ready."));
}

#[test]
fn the_image_has_a_health_check_and_the_context_leaves_build_output_out() {
    let dockerfile = std::fs::read_to_string(repo("packaging/Dockerfile")).unwrap();
    let check = dockerfile
        .split("HEALTHCHECK")
        .nth(1)
        .expect("a HEALTHCHECK");
    assert!(
        check.contains("\"/usr/local/bin/breakerd\", \"health\"") && check.contains("/-/healthy"),
        "{check}"
    );
    let ignored = std::fs::read_to_string(repo(".dockerignore")).unwrap();
    for entry in ["target", ".git", "packaging/compose/smtp_password"] {
        assert!(
            ignored.lines().any(|line| line == entry),
            "{entry} is sent to docker"
        );
    }
}

/// Every YAML document of each file, as JSON (PyYAML, Debian's python3-yaml).
fn yaml(paths: &[std::path::PathBuf]) -> Vec<Vec<serde_json::Value>> {
    let output = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([list(yaml.safe_load_all(open(p, encoding='utf-8'))) for p in sys.argv[1:]]))",
        ])
        .args(paths)
        .output()
        .expect("run python3: install Debian's python3-yaml (see .ci/debian-packages)");
    assert!(
        output.status.success(),
        "YAML does not parse: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn one(paths: &str) -> serde_json::Value {
    yaml(&[repo(paths)]).remove(0).remove(0)
}

#[test]
fn the_kubernetes_manifests_are_complete_and_generated_from_the_bundled_files() {
    let generated = Command::new("/usr/bin/python3")
        .arg(repo("scripts/kubernetes.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let kustomization = one("packaging/kubernetes/kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let mut files: Vec<std::path::PathBuf> = resources
        .iter()
        .map(|r| repo("packaging/kubernetes").join(r))
        .collect();
    files.push(repo("packaging/kubernetes/secret.example.yaml"));
    let mut by_kind = std::collections::BTreeMap::new();
    for (path, documents) in files.iter().zip(yaml(&files)) {
        for document in documents {
            for field in ["apiVersion", "kind"] {
                assert!(
                    document[field].is_string(),
                    "{}: no {field}",
                    path.display()
                );
            }
            assert!(
                document["metadata"]["name"].is_string(),
                "{}",
                path.display()
            );
            by_kind.insert(document["kind"].as_str().unwrap().to_string(), document);
        }
    }
    let kinds: Vec<&String> = by_kind.keys().collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "PrometheusRule",
            "Secret",
            "Service",
            "ServiceMonitor"
        ]
    );

    let deployment = &by_kind["Deployment"];
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(container["ports"][0]["containerPort"], 9477);
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[..3], ["run", "--config", "/etc/breakerd/alerts.toml"]);
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        by_kind["Secret"]["metadata"]["name"]
    );
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == by_kind["ConfigMap"]["metadata"]["name"])
    );
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"]
                == by_kind["PersistentVolumeClaim"]["metadata"]["name"])
    );

    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let service = &by_kind["Service"];
    assert_eq!(
        &service["spec"]["selector"], labels,
        "the Service selects the pods"
    );
    assert_eq!(
        service["metadata"]["name"], "breakerd",
        "job=\"breakerd\" for BreakerdDown"
    );
    let monitor = &by_kind["ServiceMonitor"];
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"]
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    let rules = one("grafana/prometheus/breakerd-rules.yml");
    assert_eq!(
        by_kind["PrometheusRule"]["spec"], rules,
        "the PrometheusRule carries the bundled rules unchanged"
    );

    let config = by_kind["ConfigMap"]["data"]["alerts.toml"]
        .as_str()
        .unwrap();
    let bundled = std::fs::read_to_string(repo("alerts.toml")).unwrap();
    let parsed = breakerd::config::Config::parse(
        config,
        "configmap.yaml",
        &crate::support::TestEnv::with_fake_credentials(),
    )
    .expect("the ConfigMap's alerts.toml is valid");
    assert_eq!(parsed.server.listen.to_string(), "0.0.0.0:9477");
    let differing: Vec<(&str, &str)> = bundled
        .lines()
        .zip(config.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        differing.len(),
        1,
        "only the listen line differs: {differing:?}"
    );
}

#[test]
fn the_compose_file_pins_images_and_keeps_secrets_out_of_it() {
    let compose = one("packaging/docker-compose.yml");
    let services = compose["services"].as_object().unwrap();
    for (name, service) in services {
        let image = service["image"].as_str().unwrap_or("");
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name}: image {image:?} is not pinned"
        );
        for port in service["ports"].as_array().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond loopback"
            );
        }
    }
    let env_file = &services["breakerd"]["env_file"][0];
    assert_eq!(env_file["path"], "./breakerd.env");
    assert!(repo("packaging/breakerd.env.example").exists());
    let example = std::fs::read_to_string(repo("packaging/breakerd.env.example")).unwrap();
    for variable in ["MPESA_CONSUMER_KEY", "SMTP_SERVER", "WHATSAPP_ACCESS_TOKEN"] {
        assert!(example.contains(&format!("\n{variable}=\n")), "{variable}");
    }
    let password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        .as_str()
        .unwrap();
    assert!(
        password.starts_with("${GRAFANA_ADMIN_PASSWORD:?"),
        "{password}"
    );
    let alertmanager = one("grafana/prometheus/alertmanager.yml");
    let expected = alertmanager["global"]["smtp_auth_password_file"]
        .as_str()
        .unwrap();
    let mounted = services["alertmanager"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .any(|v| v.ends_with(&format!(":{expected}:ro")));
    assert!(
        mounted,
        "Alertmanager's password file {expected} is not mounted"
    );
}

#[test]
fn the_grafana_datasource_leaves_an_existing_default_alone() {
    let datasources = one("grafana/provisioning/datasources/prometheus.yml");
    let source = &datasources["datasources"][0];
    assert_eq!(source["isDefault"], false);
    assert_eq!(source["name"], "breakerd-prometheus");
    assert_eq!(source["uid"], "breakerd-prometheus");
    for dashboard in ["breakerd-overview.json", "breakerd-service.json"] {
        let text = std::fs::read_to_string(repo("grafana/dashboards").join(dashboard)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let variable = json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap();
        assert_eq!(
            variable["current"]["value"], "breakerd-prometheus",
            "{dashboard}"
        );
    }
}
