//! Real-server tests that fail with the current policies and wait for the lead's changes of
//! issue 18 (parts 2 and 3). This module is deliberately NOT registered in `main.rs`: add
//! `mod library_pending;` there once the policies change, and move its tests into
//! `library.rs`. Each test says what it waits for; both reuse `library.rs`'s helpers.

use quiesce_tests::servers::logs_since_start;

use crate::library::{
    APACHE_GRACEFUL, Mariadb, Release, apache_config, apache_image, assert_policy, proxy_trial,
    quiesce_stop_keeping,
};

#[test]
fn apache2ctl_as_pid_1_finishes_a_proxied_download_under_quiesce() {
    // Depends on the lead's changes (issue 18, part 2: the service behind a shell). With
    // Debian's common `CMD apache2ctl -D FOREGROUND`, PID 1 is `/bin/sh /usr/sbin/apache2ctl`
    // and apache2 its child (the script does not exec it). The httpd policy's WINCH and TERM
    // go to the shell, which drops both (PID 1, no handler); apache2 never hears of the stop
    // and is SIGKILLed when the policy gives up (60 s + 10 s). Once the policy can reach the
    // service itself, apache2 logs AH00492 and the download finishes.
    let image = apache_image(
        "apache2ctl-test",
        r#"CMD ["apache2ctl", "-D", "FOREGROUND"]"#,
    );
    // PID 1 (the shell) handles no signal: nothing to wait for before the stops.
    let trial = proxy_trial(
        "apache2ctl",
        &image,
        ("/etc/apache2", "apache2.conf"),
        apache_config,
        (APACHE_GRACEFUL, &[]),
    );
    assert_policy(&trial.kept, "httpd", "SIGWINCH");
    let logs = logs_since_start(&trial.container);
    assert!(!logs.contains("AH00491"), "{logs}");
}

#[test]
fn mariadb_commits_an_open_transaction_under_quiesce_stop() {
    // Depends on the lead's changes (issue 18, part 3: policies that match their servers).
    // MariaDB has no "wait for sessions" shutdown: TERM kills every session and rolls its
    // transaction back (cleanly). The mysql policy sends TERM first, so the transaction is
    // lost exactly as under docker stop. Keeping it needs a drain before TERM, e.g. polling
    // `information_schema.processlist` until no statement but the poll's own runs
    // (/work/research/servers/FINDINGS.md, MariaDB: 18.3 s, the row committed).
    let server = Mariadb::start();
    let holder = server.lock_holder();
    let session = server.transaction("quiesce");
    // No server line announces a drain: the transaction is let go 11 s after quiesce starts,
    // past docker stop's 10 s.
    let release = Release {
        after_line: None,
        past_docker_limit: true,
    };
    let kept = quiesce_stop_keeping(&server.container, release, || holder.release());
    let committed = session.join().unwrap();
    assert!(
        committed.is_ok(),
        "the transaction was cut: {committed:?}\n{}",
        logs_since_start(&server.container)
    );
    assert_eq!(kept.service["policy"]["name"], "mysql");
    server.assert_clean_stop_and_start();
    assert_eq!(
        server
            .sql("select count(*) from t.orders where id = 'quiesce'")
            .as_deref(),
        Ok("1")
    );
}
