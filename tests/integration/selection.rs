//! One selection for both entry points (issue 25): `quiesce plan` (the host's stop, through the
//! engine) and `quiesce run --check` (inside the container) choose the same built-in for the
//! same image, for the same reason, and warn about overlapping image patterns alike. Real
//! containers run images tagged with each reference; the checks run the real binary.

use quiesce_tests::docker::{Container, docker_ok};
use serde_json::Value;

use crate::stop::{quiesce_json, run, service};

/// Images whose references the built-ins' patterns match once, several times (overlapping
/// patterns: `redis*` and `*sidekiq*`), through a registry path, or not at all.
const IMAGES: [&str; 6] = [
    "acme/redis-sidekiq:1",
    "nginx:1.27",
    "registry.local/library/postgres:16",
    "team/rabbitmq-edge:3",
    "haproxy:2.9-alpine",
    "acme/our-app:1",
];

/// What `plan` chose for the container running `image`: the policy and whether a
/// `pattern-overlap` warning came with it.
fn planned(plan: &Value, container: &str) -> (String, bool) {
    let chosen = service(plan, container);
    let overlap = chosen["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|warning| warning["code"] == "pattern-overlap");
    (
        chosen["policy"]["name"].as_str().unwrap().to_string(),
        overlap,
    )
}

/// What `run --check` chose for `image` (the command is not started): the policy, and whether
/// it warned about overlapping patterns.
fn checked(image: &str) -> (String, bool) {
    let output = run(&[
        "run",
        "--check",
        "--check-for",
        "0",
        "--image",
        image,
        "--",
        "/nonexistent/service",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{image}: {stdout}{stderr}");
    let policy = stdout
        .strip_prefix("ok: policy ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{image}: no policy in {stdout:?}"));
    (policy.to_string(), stderr.contains("[pattern-overlap]"))
}

#[test]
fn plan_and_run_check_choose_the_same_policy_for_the_same_image() {
    let tags: Vec<String> = IMAGES
        .iter()
        .map(|image| {
            let tag = image.replacen(':', &format!("-{}:", std::process::id()), 1);
            docker_ok(&["tag", quiesce_tests::docker::test_image(), &tag]);
            tag
        })
        .collect();
    let containers: Vec<Container> = tags
        .iter()
        .enumerate()
        .map(|(index, tag)| {
            Container::start(
                &format!("selected-{index}"),
                &["--network", "none"],
                tag,
                &["serve"],
            )
        })
        .collect();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let (status, plan, stderr) = quiesce_json(&[&["plan"], &names[..]].concat());
    for tag in &tags {
        docker_ok(&["rmi", tag]);
    }
    assert_eq!(status, Some(0), "{stderr}\n{plan:#}");
    let mut chosen = Vec::new();
    for (tag, container) in tags.iter().zip(&containers) {
        let by_plan = planned(&plan, &container.name);
        let by_run = checked(tag);
        assert_eq!(
            by_plan, by_run,
            "{tag}: plan chose {by_plan:?}, run --check {by_run:?}"
        );
        chosen.push((tag.clone(), by_plan));
    }
    // The overlapping patterns: the most specific wins in both, and both say so.
    let overlapping = &chosen[0].1;
    assert_eq!(overlapping, &("sidekiq".to_string(), true), "{chosen:?}");
    // A registry path does not hide an image's name; an image nothing matches gets `default`.
    assert_eq!(chosen[2].1.0, "postgres", "{chosen:?}");
    assert_eq!(chosen[5].1, ("default".to_string(), false), "{chosen:?}");
}
