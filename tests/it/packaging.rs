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
