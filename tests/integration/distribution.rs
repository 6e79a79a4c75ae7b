//! Policies through a real OCI registry (issue 26): Debian's `docker-registry` on 127.0.0.1,
//! the real binary pushing, signing, pulling and verifying, a real container planned with the
//! pulled policy while the registry is down, and every refusal named: unsigned, a wrong key, a
//! signature copied to another digest, a tag moved after verification, a repository no rule
//! covers, two keys required with one present, two layers, a foreign media type, an oversized
//! layer, a blob tampered in the store. A signature quiesce made is checked by OpenSSL (an
//! implementation quiesce does not share) and one from cosign's ecosystem by quiesce
//! (`distribution::signature`'s tests).

use std::path::{Path, PathBuf};
use std::process::Output;

use quiesce::distribution::layout::{Descriptor, Manifest, OCI_IMAGE_CONFIG, policy_manifest};
use quiesce::distribution::registry::{Registry, parse_reference};
use quiesce::model::distribution::RegistryConfig;
use quiesce_tests::docker::Container;
use quiesce_tests::registry::TestRegistry;
use quiesce_tests::{fixtures, quiesce, wasm};
use serde_json::Value;

use crate::run::Run;
use crate::stop::service;

/// A host of the fleet: its keys, configuration and store, and the registry it pulls from.
struct Host {
    registry: TestRegistry,
    dir: tempfile::TempDir,
}

impl Host {
    /// A registry, keys `a`, `b` and `c` made by `quiesce policy keygen`, and a configuration
    /// that trusts `a` for `HOST/platform/*`, needs `a` and `b` for `HOST/strict/*`, and does
    /// not know `c`.
    fn new() -> Host {
        let host = Host {
            registry: TestRegistry::start(),
            dir: tempfile::tempdir().unwrap(),
        };
        for key in ["a", "b", "c"] {
            let prefix = host.path(key);
            let output = host.quiesce(&["policy", "keygen", "--out", prefix.to_str().unwrap()]);
            assert!(output.status.success(), "keygen: {}", stderr(&output));
        }
        host.configure("");
        host
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `HOST/NAME`.
    fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    /// Writes the configuration, with `policies` (`[[registry.policies]]` entries) added.
    fn configure(&self, policies: &str) {
        let registry = self.registry.host();
        let config = format!(
            r#"
[registry]
insecure = ["{registry}"]
store = "{store}"
{policies}

[[trust.keys]]
id = "a"
public_key = "{a}"

[[trust.keys]]
id = "b"
public_key = "{b}"

[[trust.rules]]
references = ["{registry}/platform/*"]
all_of = ["a"]

[[trust.rules]]
references = ["{registry}/strict/*"]
all_of = ["a", "b"]
"#,
            store = self.path("store").display(),
            a = self.path("a.pub").display(),
            b = self.path("b.pub").display(),
        );
        std::fs::write(self.path("quiesce.toml"), config).unwrap();
    }

    /// The binary with this host's configuration, and no credentials of this machine's user.
    fn quiesce(&self, args: &[&str]) -> Output {
        self.quiesce_with(args, &[])
    }

    /// [`Host::quiesce`] with more environment variables.
    fn quiesce_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        quiesce(crate::quiesce_bin(), &crate::cache_dir())
            .env("QUIESCE_CONFIG", self.path("quiesce.toml"))
            .env_remove("QUIESCE_STORE")
            .env_remove("COSIGN_PASSWORD")
            .env("DOCKER_CONFIG", self.path("docker-config"))
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("run quiesce")
    }

    /// Pushes the fixture `file` to `HOST/name`; returns `HOST/repository@sha256:...`.
    fn push(&self, file: &str, name: &str) -> String {
        let output = self.quiesce(&["policy", "push", file, &self.reference(name)]);
        assert!(output.status.success(), "push: {}", stderr(&output));
        stdout(&output).trim().to_string()
    }

    fn sign(&self, reference: &str, key: &str) {
        let key = self.path(&format!("{key}.key"));
        let output = self.quiesce(&["policy", "sign", reference, "--key", key.to_str().unwrap()]);
        assert!(output.status.success(), "sign: {}", stderr(&output));
    }

    /// `quiesce policy verify REFERENCE [--key KEY.pub]`.
    fn verify(&self, reference: &str, key: Option<&str>) -> Output {
        let key = key.map(|key| self.path(&format!("{key}.pub")));
        let mut args = vec!["policy", "verify", reference];
        if let Some(key) = &key {
            args.extend(["--key", key.to_str().unwrap()]);
        }
        self.quiesce(&args)
    }

    /// `quiesce policy pull ARGS`: the exit status and everything it said.
    fn pull(&self, args: &[&str]) -> (Option<i32>, String) {
        let output = self.quiesce(&[&["policy", "pull"], args].concat());
        (
            output.status.code(),
            format!("{}{}", stdout(&output), stderr(&output)),
        )
    }

    /// A registry client of the library, for what the command line does not do on purpose
    /// (copying a signature, pushing manifests that are not policies).
    fn client(&self) -> Registry {
        Registry::new(&RegistryConfig {
            insecure: vec![self.registry.host()],
            ..RegistryConfig::default()
        })
        .unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn digest_of(pinned: &str) -> &str {
    pinned.split_once('@').unwrap().1
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(future)
}

#[test]
fn a_signed_policy_travels_through_a_real_registry_and_a_plan_runs_it_offline() {
    let mut host = Host::new();
    let pinned = host.push(fixtures::QUIT_FIRST, "platform/quit-first:1");
    assert!(
        pinned.starts_with(&format!(
            "{}@sha256:",
            host.reference("platform/quit-first")
        )),
        "{pinned}"
    );
    // Deterministic: the same file pushed again has the same digest.
    assert_eq!(
        host.push(fixtures::QUIT_FIRST, "platform/quit-first:again"),
        pinned
    );

    // Unsigned: refused by verify and by pull, and nothing is stored.
    let output = host.verify(&pinned, Some("a"));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("has no signature"),
        "{}",
        stderr(&output)
    );
    let (status, said) = host.pull(&[&pinned]);
    assert_eq!(status, Some(1), "{said}");
    assert!(said.contains("nothing of it is in the store"), "{said}");

    host.sign(&host.reference("platform/quit-first:1"), "a");
    let output = host.verify(&pinned, Some("a"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with(&format!("verified {pinned}")),
        "{}",
        stdout(&output)
    );
    let output = host.verify(&pinned, Some("b"));
    assert_eq!(
        output.status.code(),
        Some(1),
        "another key: {}",
        stdout(&output)
    );
    let output = host.verify(&pinned, None);
    assert!(
        stdout(&output).contains("signed by a"),
        "{}",
        stderr(&output)
    );

    // The signature quiesce made, checked by OpenSSL from what the registry serves.
    let reference = parse_reference(&pinned).unwrap();
    let (signatures, _) =
        block_on(host.client().signatures(&reference, digest_of(&pinned))).unwrap();
    assert_eq!(signatures.len(), 1);
    std::fs::write(host.path("payload.json"), &signatures[0].payload).unwrap();
    let der = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(signatures[0].signature.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    std::fs::write(host.path("signature.der"), der.stdout).unwrap();
    let openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(host.path("a.pub"))
        .arg("-signature")
        .arg(host.path("signature.der"))
        .arg(host.path("payload.json"))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&openssl).trim(),
        "Verified OK",
        "{}",
        stderr(&openssl)
    );

    // Pulled as the configuration names it, pinned by digest; listed with its provenance.
    host.configure(&format!(
        "[[registry.policies]]\nname = \"quit-first\"\nreference = \"{pinned}\"\n"
    ));
    let (status, said) = host.pull(&[]);
    assert_eq!(status, Some(0), "{said}");
    assert!(
        said.contains("(policy quit-first 0.1.0, signed by a)"),
        "{said}"
    );
    let output = host.quiesce(&["policy", "list", "--json"]);
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = list["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|policy| policy["name"] == "quit-first")
        .unwrap_or_else(|| panic!("{list:#}"));
    assert_eq!(entry["source"], "registry");
    assert_eq!(entry["reference"], pinned);
    assert_eq!(entry["signers"], serde_json::json!(["a"]));

    // The registry goes down: a pull fails and keeps the verified version; the stop path
    // never needed the network.
    host.registry.stop();
    let (status, said) = host.pull(&[]);
    assert_eq!(status, Some(3), "{said}");
    assert!(said.contains("cannot reach the registry"), "{said}");
    assert!(
        said.contains(&format!("the store keeps {pinned}")),
        "{said}"
    );
    let container = Container::run("pulled", &["--label", "quiesce.policy=quit-first"], &[]);
    let plan = |host: &Host| {
        let output = host.quiesce(&["plan", &container.name, "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("plan: {}", stderr(&output)));
        service(&report, &container.name).clone()
    };
    let planned = plan(&host);
    assert_eq!(planned["policy"]["name"], "quit-first", "{planned:#}");
    assert_eq!(
        planned["policy"]["source"],
        format!("{pinned} (signed by a)"),
        "{planned:#}"
    );
    assert_eq!(planned["steps"][0]["detail"], "SIGQUIT", "{planned:#}");

    // `quiesce run` as a container's PID 1 with the store an init step filled, mounted
    // read-only (the container has no network at all).
    let quit_first_run = |name: &str| {
        let dir = host.dir.path().display().to_string();
        let mount = format!("{dir}:{dir}:ro");
        let config = format!("QUIESCE_CONFIG={}", host.path("quiesce.toml").display());
        let run = Run::start_with(
            name,
            &["-v", &mount, "-e", &config],
            &[
                "--policy",
                "quit-first",
                "--grace-period",
                "30s",
                "--report",
                "/out/report.json",
                "--",
                "/test-service",
                "serve",
                "--graceful",
                "QUIT",
                "--job-ms",
                "2000",
            ],
        );
        run.container
            .wait_for_log("started job", std::time::Duration::from_secs(20));
        quiesce_tests::docker::docker_ok(&["stop", "-t", "30", &run.container.name]);
        run.exit_code();
        run
    };
    let run = quit_first_run("pulled-run");
    let (started, completed) = run.container.jobs();
    assert!(
        started > 0 && completed == started,
        "{}",
        run.container.logs()
    );
    let report = run.report();
    assert_eq!(
        report["policy"]["source"],
        format!("{pinned} (signed by a)"),
        "{report:#}"
    );
    assert_eq!(report["steps"][0]["detail"], "SIGQUIT", "{report:#}");

    // One byte of the stored component changed: never run; the service gets `default`.
    let blobs = host.path("store/blobs/sha256");
    let component = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| std::fs::read(path).unwrap().starts_with(b"\0asm"))
        .unwrap();
    let mut bytes = std::fs::read(&component).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&component, bytes).unwrap();
    let planned = plan(&host);
    assert_eq!(planned["policy"]["name"], "default", "{planned:#}");
    let warning = planned["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|warning| warning["code"] == "policy-withheld")
        .unwrap_or_else(|| panic!("{planned:#}"));
    assert!(
        warning["message"].as_str().unwrap().contains("is altered"),
        "{warning}"
    );
    assert!(container.running(), "plan touched the container");
    // Under `quiesce run`, the command still starts and its stop runs the conservative
    // fallback sequence (SIGTERM first: this service drains on QUIT only, so the fallback's
    // kill ends it), the report naming why.
    let run = quit_first_run("pulled-run-withheld");
    let report = run.report();
    assert_eq!(report["steps"][0]["detail"], "SIGTERM", "{report:#}");
    assert!(
        report.to_string().contains("is altered"),
        "{report:#}\n{}",
        run.container.logs()
    );
}

#[test]
fn every_refusal_names_what_failed_and_keeps_the_last_verified_version() {
    let host = Host::new();
    let refused = |args: &[&str], expected: &str| {
        let (status, said) = host.pull(args);
        assert_eq!(status, Some(1), "{args:?}: {said}");
        assert!(
            said.contains(expected),
            "{args:?}: expected {expected:?} in {said}"
        );
    };

    // Signed by a key the configuration does not know, then by one the rule does not name.
    let wrong = host.push(fixtures::QUIT_FIRST, "platform/wrong:1");
    host.sign(&wrong, "c");
    refused(
        &[&wrong],
        "none of the 1 signature(s) verifies with a configured key",
    );
    host.sign(&wrong, "b");
    refused(&[&wrong], "missing: a; signed by [b]");

    // A rule needing two keys, one present; then both.
    let strict = host.push(fixtures::QUIT_FIRST, "strict/p:1");
    host.sign(&strict, "a");
    refused(&[&strict], "missing: b");
    host.sign(&strict, "b");
    let (status, said) = host.pull(&[&strict]);
    assert_eq!(status, Some(0), "{said}");
    assert!(said.contains("signed by a, b"), "{said}");

    // A repository no rule covers.
    let uncovered = host.push(fixtures::QUIT_FIRST, "elsewhere/p:1");
    host.sign(&uncovered, "a");
    refused(&[&uncovered], "no [[trust.rules]] entry covers");

    // A signature copied from another digest.
    let signed = host.push(fixtures::QUIT_FIRST, "platform/x:1");
    host.sign(&signed, "a");
    let other = host.push(fixtures::ECHO, "platform/x:2");
    let client = host.client();
    block_on(async {
        let from = parse_reference(&signed).unwrap();
        let (signatures, Some(manifest)) =
            client.signatures(&from, digest_of(&signed)).await.unwrap()
        else {
            panic!("no signature manifest for {signed}");
        };
        let config = client.blob(&from, &manifest.config, 1 << 20).await.unwrap();
        let to = parse_reference(&format!(
            "{}:{}",
            host.reference("platform/x"),
            digest_of(&other).replace(':', "-") + ".sig"
        ))
        .unwrap();
        client
            .push(&to, &manifest, &[&config, &signatures[0].payload])
            .await
            .unwrap();
    });
    refused(&[&other], "names another digest");

    // A tag moved after verification: the pull refuses and the store keeps what it had.
    let tag = host.reference("platform/x:1");
    let (status, said) = host.pull(&[&tag]);
    assert_eq!(status, Some(0), "{said}");
    host.push(fixtures::EXEC_STOP, "platform/x:1");
    refused(&[&tag], &format!("the store keeps {signed}"));
    host.configure(&format!(
        "[[registry.policies]]\nname = \"quit-first\"\nreference = \"{tag}\"\nallow_tag = true\n"
    ));
    let output = host.quiesce(&["policy", "list", "--json"]);
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        list["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|policy| policy["name"] == "quit-first" && policy["reference"] == signed),
        "the last verified version is still the one used: {list:#}"
    );

    // Manifests that are not policies, refused before any component is read.
    let component = wasm(fixtures::QUIT_FIRST);
    let not_a_policy = |name: &str, change: &dyn Fn(&mut Manifest, &mut Vec<Vec<u8>>)| {
        let (mut manifest, config) = policy_manifest(&component, Default::default());
        let mut blobs = vec![config, component.clone()];
        change(&mut manifest, &mut blobs);
        let reference = parse_reference(&host.reference(name)).unwrap();
        let blobs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        block_on(client.push(&reference, &manifest, &blobs)).unwrap();
        host.reference(name)
    };
    let two_layers = not_a_policy("platform/two:1", &|manifest, _| {
        manifest.layers.push(manifest.layers[0].clone());
    });
    refused(&[&two_layers], "it has 2 layers");
    let image = not_a_policy("platform/image:1", &|manifest, blobs| {
        let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec();
        manifest.config = Descriptor::of(OCI_IMAGE_CONFIG, &config);
        blobs.push(config);
    });
    refused(&[&image], "not a Wasm component's");
    let oversized = not_a_policy("platform/big:1", &|manifest, blobs| {
        let big = vec![0u8; (16 << 20) + 1];
        manifest.layers[0] = Descriptor {
            media_type: "application/wasm".into(),
            ..Descriptor::of("application/wasm", &big)
        };
        blobs.push(big);
    });
    refused(&[&oversized], "a policy may be at most 16777216 bytes");
}

#[test]
fn credentials_are_found_where_the_docker_cli_keeps_them() {
    let host = Host::new();
    let private = TestRegistry::start_with_login("fleet", "s3cret");
    let config = std::fs::read_to_string(host.path("quiesce.toml"))
        .unwrap()
        .replace(
            &format!("insecure = [\"{}\"]", host.registry.host()),
            &format!("insecure = [\"{}\"]", private.host()),
        );
    std::fs::write(host.path("quiesce.toml"), config).unwrap();
    let target = format!("{}/platform/p:1", private.host());
    let output = host.quiesce(&["policy", "push", fixtures::QUIT_FIRST, &target]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains(&target), "{}", stderr(&output));
    // `docker login` writes this.
    let docker_config = host.path("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"ZmxlZXQ6czNjcmV0\"}}}}}}",
            private.host()
        ),
    )
    .unwrap();
    let output = host.quiesce(&["policy", "push", fixtures::QUIT_FIRST, &target]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(Path::new(private.storage()).join("data").exists());
}

#[test]
fn a_configuration_that_would_trust_by_omission_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = |config: &str, expected: &str| {
        let path = dir.path().join("quiesce.toml");
        std::fs::write(&path, config).unwrap();
        let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
            .env("QUIESCE_CONFIG", &path)
            .args(["policy", "list"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{config}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    };
    check(
        "[[registry.policies]]\nname = \"p\"\nreference = \"r.example/p:1\"\n",
        "is not pinned by digest",
    );
    check(
        "[[trust.rules]]\nreferences = [\"r.example/*\"]\n",
        "give `all_of` or `any_of`",
    );
    check(
        "[[trust.rules]]\nreferences = [\"r.example/*\"]\nall_of = [\"nobody\"]\n",
        "the key `nobody` is not among [[trust.keys]]",
    );
    check(
        "[[trust.keys]]\nid = \"a\"\npublic_key = \"/k.pub\"\n[[trust.rules]]\nreferences = [\"r.example/*\"]\nany_of = [\"a\", \"a\"]\nminimum = 2\n",
        "names the key `a` twice",
    );
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        stderr(&output)
    );
}

#[test]
fn tls_is_the_default_and_a_private_ca_is_trusted_only_when_configured() {
    let host = Host::new();
    // A certificate authority of the test, and the registry's certificate for 127.0.0.1.
    let pki = host.path("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &pki,
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=quiesce test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &pki,
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(pki.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &pki,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let secure = TestRegistry::start_tls(&pki.join("server.pem"), &pki.join("server.key"));
    let target = format!("{}/platform/p:1", secure.host());
    let plain_config = std::fs::read_to_string(host.path("quiesce.toml")).unwrap();

    // Not listed as insecure, CA unknown: TLS is tried, the certificate refused, and nothing
    // is sent over plain HTTP instead.
    let output = host.quiesce(&["policy", "push", fixtures::QUIT_FIRST, &target]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("https://") && stderr(&output).contains("certificate"),
        "{}",
        stderr(&output)
    );

    // The registry's CA configured: push, sign and pull over TLS.
    let with_ca = plain_config.replace(
        "[registry]\n",
        &format!(
            "[registry]\nca_certificates = [\"{}\"]\n",
            pki.join("ca.pem").display()
        ),
    );
    std::fs::write(host.path("quiesce.toml"), with_ca).unwrap();
    let output = host.quiesce(&["policy", "push", fixtures::QUIT_FIRST, &target]);
    assert!(output.status.success(), "{}", stderr(&output));
    let pinned = stdout(&output).trim().to_string();
    host.sign(&pinned, "a");
    let output = host.verify(&pinned, Some("a"));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_key_cosign_generated_signs_through_the_command_line_with_cosigns_password_variable() {
    let host = Host::new();
    let key = quiesce_tests::workspace()
        .join("host/tests/fixtures/cosign/cosign-generated-encrypted-empty-password.key");
    let public = quiesce::distribution::signature::PrivateKey::from_pem(
        &std::fs::read_to_string(&key).unwrap(),
        Some(""),
    )
    .unwrap()
    .public_pem();
    std::fs::write(host.path("cosign.pub"), public).unwrap();
    let pinned = host.push(fixtures::QUIT_FIRST, "platform/cosign:1");
    let sign = |env: &[(&str, &str)]| {
        host.quiesce_with(
            &["policy", "sign", &pinned, "--key", key.to_str().unwrap()],
            env,
        )
    };
    let output = sign(&[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("COSIGN_PASSWORD"),
        "{}",
        stderr(&output)
    );
    let output = sign(&[("COSIGN_PASSWORD", "")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = host.verify(&pinned, Some("cosign"));
    assert!(output.status.success(), "{}", stderr(&output));
}
